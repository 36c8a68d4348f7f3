/* admin_stats.h - GET /stats/endpoints: each endpoint's calls, errors and latency over a recent
 * period, computed from the stored request log (for the console's Endpoints screen). */
#ifndef PT_ADMIN_STATS_H
#define PT_ADMIN_STATS_H

#include "admin/admin.h"

/* The routes (ended by a zeroed entry); min role viewer. */
extern const pt_admin_route pt_admin_stats_routes[];

#endif
