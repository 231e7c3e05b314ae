/* schedule.c: cadre_schedule_list / run / pause through a node's Admin
 * ops (node/scheduler.h). Pausing an on_one_server schedule is answered
 * by the node's coord path (a CoordReply for the pause key in the leader's
 * log). */
#include "client/client.h"

#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"

static void
schedule_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Sends the Admin op with name; *rep is the reply (msg_free it). */
static int
schedule_call(cadre_client *c, int op, const char *name, struct msg *rep,
              cd_err *err)
{
    struct msg req = {.kind = MSG_ADMIN};

    req.u.admin.op = op;
    req.u.admin.queue = name;
    return client_call(c, &req, c->timeout_ms, rep, err);
}

int
cadre_schedule_list(cadre_client *c, cadre_schedule_info **out, size_t *n)
{
    struct msg           rep;
    cd_err               err = {0};
    cadre_schedule_info *v = NULL;
    size_t               k;
    int                  rc;

    if (c == NULL || out == NULL || n == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "schedule list: no client");
        return client_fail(&err);
    }
    *out = NULL;
    *n = 0;
    rc = schedule_call(c, MSG_ADMIN_SCHEDULE_LIST, NULL, &rep, &err);
    if (rc == CADRE_OK && rep.kind != MSG_ADMIN_REPLY) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected reply");
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "schedule list");
        return client_fail(&err);
    }
    k = rep.u.admin_reply.schedules_n;
    if (k > 0 && (v = cd_calloc(k, sizeof(*v))) == NULL) {
        msg_free(&rep);
        cd_err_set(&err, CADRE_ENOMEM, "schedule list: out of memory");
        return client_fail(&err);
    }
    for (size_t i = 0; i < k; i++) {
        const struct msg_schedule *s = &rep.u.admin_reply.schedules[i];

        schedule_copy(v[i].name, sizeof(v[i].name), s->name);
        schedule_copy(v[i].cron, sizeof(v[i].cron), s->cron);
        schedule_copy(v[i].task, sizeof(v[i].task), s->task);
        schedule_copy(v[i].queue, sizeof(v[i].queue), s->queue);
        schedule_copy(v[i].timezone, sizeof(v[i].timezone), s->tz);
        schedule_copy(v[i].where, sizeof(v[i].where), s->where);
        v[i].on_one_server = s->on_one_server;
        v[i].paused = s->paused;
        v[i].next_s = s->next_s;
        v[i].last_s = s->last_s;
        v[i].fired = s->fired;
    }
    msg_free(&rep);
    *out = v;
    *n = k;
    return CADRE_OK;
}

int
cadre_schedule_run(cadre_client *c, const char *name, cadre_job_id *id)
{
    struct msg rep;
    cd_err     err = {0};
    int        rc;

    if (c == NULL || name == NULL || name[0] == '\0') {
        cd_err_set(&err, CADRE_EINVAL, "schedule run: no name");
        return client_fail(&err);
    }
    rc = schedule_call(c, MSG_ADMIN_SCHEDULE_RUN, name, &rep, &err);
    if (rc == CADRE_OK &&
        (rep.kind != MSG_ADMIN_REPLY || !rep.u.admin_reply.has_id)) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected reply");
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "schedule run %s", name);
        return client_fail(&err);
    }
    if (id != NULL)
        *id = rep.u.admin_reply.id;
    msg_free(&rep);
    return CADRE_OK;
}

/* A pause answered through the leader: OK, or the key already in the
 * wanted state (EXISTS: paused before; NOT_HOLDER: not paused). */
static int
schedule_pause_coord(const struct msg_coord_reply *r, int paused, cd_err *err)
{
    if (r->code == MSG_COORD_OK || (paused && r->code == MSG_COORD_EXISTS) ||
        (!paused && r->code == MSG_COORD_NOT_HOLDER))
        return CADRE_OK;
    return cd_err_set(err, CADRE_EPROTO, "the leader answered code %d",
                      r->code);
}

int
cadre_schedule_pause(cadre_client *c, const char *name, int paused)
{
    struct msg rep;
    cd_err     err = {0};
    int        rc;

    if (c == NULL || name == NULL || name[0] == '\0') {
        cd_err_set(&err, CADRE_EINVAL, "schedule pause: no name");
        return client_fail(&err);
    }
    rc = schedule_call(
        c, paused ? MSG_ADMIN_SCHEDULE_PAUSE : MSG_ADMIN_SCHEDULE_RESUME, name,
        &rep, &err);
    if (rc == CADRE_OK) {
        if (rep.kind == MSG_COORD_REPLY)
            rc = schedule_pause_coord(&rep.u.coord_reply, paused, &err);
        else if (rep.kind != MSG_ADMIN_REPLY)
            rc = cd_err_set(&err, CADRE_EPROTO, "unexpected reply");
        msg_free(&rep);
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "schedule %s %s", paused ? "pause" : "resume", name);
        return client_fail(&err);
    }
    return CADRE_OK;
}
