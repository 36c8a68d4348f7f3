/* err.c - human-readable descriptions of Portico's error codes. */
#include "core/err.h"

const char *
pt_strerror(int rc)
{
    switch (rc) {
    case PT_OK:
        return "success";
    case PT_ENOMEM:
        return "out of memory";
    case PT_EINVAL:
        return "invalid argument";
    case PT_ENOTFOUND:
        return "not found";
    case PT_EEXIST:
        return "already exists";
    case PT_EIO:
        return "input/output error";
    case PT_EDB:
        return "database error";
    case PT_ETOOBIG:
        return "too big";
    case PT_ESYNTAX:
        return "syntax error";
    case PT_EPY:
        return "Python error";
    case PT_EUNAVAIL:
        return "service unavailable";
    case PT_EAGAIN:
        return "not ready yet";
    default:
        return "unknown error";
    }
}
