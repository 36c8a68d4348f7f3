/* err.h - Portico's error codes: every fallible function returns 0 or a negative pt_err. */
#ifndef PT_ERR_H
#define PT_ERR_H

enum pt_err {
    PT_OK = 0,
    PT_ENOMEM = -1,    /* allocation failed */
    PT_EINVAL = -2,    /* bad argument or malformed input */
    PT_ENOTFOUND = -3, /* unknown name */
    PT_EEXIST = -4,    /* name already taken */
    PT_EIO = -5,       /* file or socket error (errno says more) */
    PT_EDB = -6,       /* database error (the driver's message says more) */
    PT_ETOOBIG = -7,   /* a bounded buffer would exceed its cap */
    PT_ESYNTAX = -8,   /* script does not compile */
    PT_EPY = -9,       /* Python raised */
    PT_EUNAVAIL = -10, /* a back end is unreachable */
    PT_EAGAIN = -11,   /* not ready yet: nothing went wrong, try again later */
};

/* Returns a static, human-readable description of rc (never NULL). */
const char *pt_strerror(int rc);

#endif
