/* admin.c: operator requests (see admin.h). */
#include "node/admin.h"

#include "common/alloc.h"

struct admin {
    int unused;
};

int
admin_new(struct admin **out)
{
    *out = cd_calloc(1, sizeof(**out));
    return *out == NULL ? CADRE_ENOMEM : CADRE_OK;
}

void
admin_free(struct admin *a)
{
    cd_free(a);
}

int
admin_handle(struct admin *a, struct turn *t, struct turn_sealer *s,
             struct api_req *r, int role, const struct msg *m)
{
    (void)a;
    (void)t;
    (void)s;
    (void)r;
    (void)role;
    (void)m;
    return 0;
}
