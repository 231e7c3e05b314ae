/* uniq.c: cluster-wide unique jobs (uniq.h). */
#include "node/uniq.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/log.h"
#include "node/fsm.h"

#define UNIQ_KEY_LEN 35      /* "u:" + 32 hex + NUL */
#define UNIQ_RETRY_MAX 65536 /* releases waiting for a leader */
#define UNIQ_RETRY_MS 500

/* One key asked for, of one parked dispatch. */
struct uniq_ask {
    struct uniq        *u;
    struct uniq_parked *p;
    size_t              job;
};

/* A release that found no leader. */
struct uniq_retry {
    char key[UNIQ_KEY_LEN];
    char owner[CD_ID_TEXT_LEN + 1];
};

struct uniq {
    struct coord       *co;
    struct uniq_parked *ready, **ready_tail;
    size_t              parked; /* parked, answers pending */
    struct uniq_retry  *retry;
    size_t              retry_n, retry_cap;
    uint64_t            next_retry_mono;
    int                 kicked;
};

int
uniq_new(struct coord *co, struct uniq **out)
{
    struct uniq *u = cd_calloc(1, sizeof(*u));

    if (u == NULL)
        return CADRE_ENOMEM;
    u->co = co;
    u->ready_tail = &u->ready;
    *out = u;
    return CADRE_OK;
}

void
uniq_parked_free(struct uniq_parked *p)
{
    if (p == NULL)
        return;
    msg_free(&p->m);
    cd_free(p->verdict);
    cd_free(p);
}

void
uniq_close(struct uniq *u)
{
    if (u == NULL)
        return;
    while (u->ready != NULL) {
        struct uniq_parked *p = u->ready;

        u->ready = p->next;
        api_drop(p->req);
        uniq_parked_free(p);
    }
    u->ready_tail = &u->ready;
}

void
uniq_free(struct uniq *u)
{
    if (u == NULL)
        return;
    uniq_close(u);
    cd_free(u->retry);
    cd_free(u);
}

void
uniq_fsm_key(const char *unique_key, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t           h[16];
    char              text[UNIQ_KEY_LEN];

    crypto_generichash(h, sizeof(h), (const uint8_t *)unique_key,
                       strlen(unique_key), NULL, 0);
    text[0] = 'u';
    text[1] = ':';
    for (size_t i = 0; i < sizeof(h); i++) {
        text[2 + 2 * i] = hex[h[i] >> 4];
        text[3 + 2 * i] = hex[h[i] & 15];
    }
    text[UNIQ_KEY_LEN - 1] = '\0';
    snprintf(out, cap, "%s", text);
}

/* The store's spelling of job i's unique key (intake_job_view's). */
static int
uniq_store_key(const struct msg_new_job *j, char *out, size_t cap)
{
    const char *id = j->opts.unique_id;

    if (id == NULL || id[0] == '\0')
        return 0;
    snprintf(out, cap, "%s\x1f%s", j->task ? j->task : "", id);
    return 1;
}

int
uniq_wanted(const struct uniq *u, const struct msg *m)
{
    if (u == NULL || m->kind != MSG_DISPATCH)
        return 0;
    for (size_t i = 0; i < m->u.dispatch.jobs_n; i++) {
        const char *id = m->u.dispatch.jobs[i].opts.unique_id;

        if (id != NULL && id[0] != '\0')
            return 1;
    }
    return 0;
}

static void
uniq_fail(struct uniq_parked *p, int rc, const char *why)
{
    if (p->rc != CADRE_OK)
        return;
    p->rc = rc;
    snprintf(p->why, sizeof(p->why), "%s", why);
}

static void
uniq_ready(struct uniq *u, struct uniq_parked *p)
{
    *u->ready_tail = p;
    u->ready_tail = &p->next;
    u->kicked = 1;
}

static void
uniq_take_cb(void *arg, int rc, const struct fsm_result *res)
{
    struct uniq_ask     *a = arg;
    struct uniq_parked  *p = a->p;
    struct uniq_verdict *v = &p->verdict[a->job];

    if (rc != CADRE_OK)
        uniq_fail(p, CADRE_EBUSY,
                  "no leader: unique jobs' keys live in the leader's log "
                  "(none answered); retry");
    else if (res->code == FSM_R_EXISTS) {
        v->held = 1;
        if (cadre_job_id_parse(res->holder, &v->holder) != CADRE_OK)
            uniq_fail(p, CADRE_EPROTO, "the leader named a bad holder");
    } else if (res->code != FSM_R_OK)
        uniq_fail(p, CADRE_EFULL,
                  "the leader cannot take more unique keys (FSM full)");
    else
        v->taken = 1;
    if (--p->pending == 0) {
        a->u->parked--;
        uniq_ready(a->u, p);
    }
    cd_free(a);
}

/* Asks for job i's key; 0 if nothing was asked (an error noted in p). */
static int
uniq_ask(struct uniq *u, struct uniq_parked *p, size_t i)
{
    const struct msg_new_job *j = &p->m.u.dispatch.jobs[i];
    char                      skey[512], fkey[UNIQ_KEY_LEN];
    char                      owner[CD_ID_TEXT_LEN + 1];
    struct uniq_ask          *a;
    struct fsm_cmd            c = {.kind = FSM_UNIQUE_TAKE};
    int                       rc;

    if (!uniq_store_key(j, skey, sizeof(skey)))
        return 0;
    uniq_fsm_key(skey, fkey, sizeof(fkey));
    cadre_job_id_format(&j->id, owner);
    c.key = fkey;
    c.key_len = (uint16_t)strlen(fkey);
    c.owner = owner;
    c.owner_len = (uint16_t)strlen(owner);
    c.ttl_ms = j->opts.unique_for_ms;
    if ((a = cd_malloc(sizeof(*a))) == NULL) {
        uniq_fail(p, CADRE_ENOMEM, "node out of memory");
        return 0;
    }
    *a = (struct uniq_ask){.u = u, .p = p, .job = i};
    rc = coord_submit(u->co, &c, uniq_take_cb, a);
    if (rc == CADRE_OK)
        return 1;
    cd_free(a);
    uniq_fail(p, rc == CADRE_ESTOPPING ? rc : CADRE_EBUSY,
              rc == CADRE_ESTOPPING
                  ? "node is stopping"
                  : "no leader: unique jobs' keys live in the leader's log "
                    "(none elected or reachable); retry");
    return 0;
}

void
uniq_park(struct uniq *u, struct api_req *r, int role, struct msg *m)
{
    struct uniq_parked *p = cd_calloc(1, sizeof(*p));
    size_t              n = m->u.dispatch.jobs_n;

    if (p == NULL ||
        (p->verdict = cd_calloc(n ? n : 1, sizeof(*p->verdict))) == NULL) {
        cd_free(p);
        msg_free(m);
        api_drop(r);
        return;
    }
    p->req = r;
    p->role = role;
    p->m = *m; /* moved: the decoder's allocation comes along */
    memset(m, 0, sizeof(*m));
    p->pending = 1; /* held until every ask is out */
    for (size_t i = 0; i < n && p->rc == CADRE_OK; i++)
        p->pending += (size_t)uniq_ask(u, p, i);
    if (--p->pending == 0)
        uniq_ready(u, p);
    else
        u->parked++;
}

/* Gives back the keys a refused request took. */
static void
uniq_unwind(struct uniq *u, struct uniq_parked *p)
{
    for (size_t i = 0; i < p->m.u.dispatch.jobs_n; i++) {
        struct store_job job;
        char             skey[512];

        if (!p->verdict[i].taken ||
            !uniq_store_key(&p->m.u.dispatch.jobs[i], skey, sizeof(skey)))
            continue;
        memset(&job, 0, sizeof(job));
        job.id = p->m.u.dispatch.jobs[i].id;
        job.unique_key = skey;
        uniq_release(u, &job);
    }
}

struct uniq_parked *
uniq_take_ready(struct uniq *u)
{
    struct uniq_parked *p;

    if (u == NULL || u->ready == NULL) {
        if (u != NULL)
            u->kicked = 0;
        return NULL;
    }
    p = u->ready;
    u->ready = p->next;
    if (u->ready == NULL)
        u->ready_tail = &u->ready;
    p->next = NULL;
    if (p->rc != CADRE_OK)
        uniq_unwind(u, p);
    return p;
}

int
uniq_wants_turn(const struct uniq *u, uint64_t mono_ms)
{
    return u != NULL &&
           (u->kicked || (u->retry_n > 0 && mono_ms >= u->next_retry_mono));
}

/* ---- releases ------------------------------------------------------------ */

static void
uniq_retry_add(struct uniq *u, const char *key, const char *owner)
{
    if (u->retry_n == u->retry_cap) {
        size_t             cap = u->retry_cap ? u->retry_cap * 2 : 64;
        struct uniq_retry *v;

        if (cap > UNIQ_RETRY_MAX ||
            (v = cd_realloc(u->retry, cap * sizeof(*v))) == NULL) {
            CD_LOG_WARN("uniq", "UNIQ-RELEASE-LOST", "key=%s owner=%s", key,
                        owner); /* its ttl, if any, frees it */
            return;
        }
        u->retry = v;
        u->retry_cap = cap;
    }
    snprintf(u->retry[u->retry_n].key, UNIQ_KEY_LEN, "%s", key);
    snprintf(u->retry[u->retry_n].owner, sizeof(u->retry[0].owner), "%s",
             owner);
    u->retry_n++;
}

struct uniq_rel {
    struct uniq      *u;
    struct uniq_retry r;
};

static void
uniq_release_cb(void *arg, int rc, const struct fsm_result *res)
{
    struct uniq_rel *a = arg;

    (void)res; /* NOT_HOLDER: released before, or expired: nothing to do */
    if (rc == CADRE_EBUSY)
        uniq_retry_add(a->u, a->r.key, a->r.owner);
    cd_free(a);
}

static void
uniq_release_key(struct uniq *u, const char *key, const char *owner)
{
    struct fsm_cmd   c = {.kind = FSM_UNIQUE_RELEASE};
    struct uniq_rel *a = cd_malloc(sizeof(*a));
    int              rc;

    if (a == NULL) {
        uniq_retry_add(u, key, owner);
        return;
    }
    a->u = u;
    snprintf(a->r.key, sizeof(a->r.key), "%s", key);
    snprintf(a->r.owner, sizeof(a->r.owner), "%s", owner);
    c.key = a->r.key;
    c.key_len = (uint16_t)strlen(a->r.key);
    c.owner = a->r.owner;
    c.owner_len = (uint16_t)strlen(a->r.owner);
    rc = coord_submit(u->co, &c, uniq_release_cb, a);
    if (rc != CADRE_OK) {
        if (rc != CADRE_ESTOPPING)
            uniq_retry_add(u, a->r.key, a->r.owner);
        cd_free(a);
    }
}

void
uniq_release(struct uniq *u, const struct store_job *job)
{
    char key[UNIQ_KEY_LEN], owner[CD_ID_TEXT_LEN + 1];

    if (u == NULL || job->unique_key == NULL || job->unique_key[0] == '\0')
        return;
    uniq_fsm_key(job->unique_key, key, sizeof(key));
    cadre_job_id_format(&job->id, owner);
    uniq_release_key(u, key, owner);
}

void
uniq_tick(struct uniq *u, uint64_t mono_ms)
{
    struct uniq_retry *v;
    size_t             n;

    if (u == NULL || u->retry_n == 0 || mono_ms < u->next_retry_mono)
        return;
    u->next_retry_mono = mono_ms + UNIQ_RETRY_MS;
    v = u->retry;
    n = u->retry_n;
    u->retry = NULL; /* the releases may queue themselves again */
    u->retry_n = u->retry_cap = 0;
    for (size_t i = 0; i < n; i++)
        uniq_release_key(u, v[i].key, v[i].owner);
    cd_free(v);
}
