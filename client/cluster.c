/* cluster.c: libcadre's view of the cluster (cadre.h, "cluster: members"):
 * the members a node knows, copied out of its Members reply into one block
 * the caller frees. No printing: errors go to the caller with their
 * context. */
#include "client/client.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"

/* The queues follow the members in the same block. */
_Static_assert(sizeof(cadre_member) % alignof(cadre_queue_depth) == 0,
               "cadre_queue_depth after cadre_member[] is misaligned");

const char *
cadre_member_state_name(int state)
{
    switch (state) {
    case CADRE_MEMBER_ALIVE:
        return "alive";
    case CADRE_MEMBER_SUSPECT:
        return "suspect";
    case CADRE_MEMBER_DEAD:
        return "dead";
    case CADRE_MEMBER_SELF:
        return "self";
    default:
        return "unknown";
    }
}

void
cadre_members_free(cadre_member *m, size_t n)
{
    (void)n; /* one block: the array and every member's queues */
    cd_free(m);
}

/* Copies src (NULL: "") into dst of cap bytes. A string that does not fit is
 * cut before the UTF-8 character that would not fit whole, so what is left
 * stays valid text. */
static void
cluster_copy_str(char *dst, size_t cap, const char *src)
{
    size_t len = src != NULL ? strlen(src) : 0;

    if (len >= cap) {
        len = cap - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
            len--;
    }
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

static void
cluster_copy_member(const struct msg_member *in, cadre_member *out,
                    cadre_queue_depth *queues)
{
    cluster_copy_str(out->node_id, sizeof(out->node_id), in->node_id);
    cluster_copy_str(out->peer_url, sizeof(out->peer_url), in->peer_url);
    cluster_copy_str(out->api_url, sizeof(out->api_url), in->api_url);
    cluster_copy_str(out->events_url, sizeof(out->events_url), in->events_url);
    out->state = (int)in->state;
    out->last_heard_ms = in->last_heard_ms;
    out->workers = in->workers;
    out->free_slots = in->free_slots;
    out->ready = in->ready;
    cluster_copy_str(out->version, sizeof(out->version), in->version);
    cluster_copy_str(out->leader, sizeof(out->leader), in->leader);
    out->boot_id = in->boot_id;
    out->queues_n = in->queues_n;
    out->queues = in->queues_n > 0 ? queues : NULL;
    for (size_t i = 0; i < in->queues_n; i++) {
        cluster_copy_str(queues[i].name, sizeof(queues[i].name),
                         in->queue_names[i]);
        queues[i].ready = in->queue_ready[i];
    }
}

/* Copies the reply's members into one block: the array, then the queues of
 * every member in order. */
static int
cluster_copy_members(const struct msg_members *in, cadre_member **out,
                     cd_err *err)
{
    cadre_member      *ms;
    cadre_queue_depth *qs;
    size_t             queues_n = 0, max;

    *out = NULL;
    if (in->members_n == 0)
        return CADRE_OK;
    /* Counts come from the wire: check that the block size cannot wrap. */
    if (in->members_n > SIZE_MAX / sizeof(*ms))
        return cd_err_set(err, CADRE_EPROTO, "too many members");
    max = (SIZE_MAX - in->members_n * sizeof(*ms)) / sizeof(*qs);
    for (size_t i = 0; i < in->members_n; i++) {
        if (in->members[i].queues_n > max - queues_n)
            return cd_err_set(err, CADRE_EPROTO, "too many queues");
        queues_n += in->members[i].queues_n;
    }
    ms = cd_calloc(1, in->members_n * sizeof(*ms) + queues_n * sizeof(*qs));
    if (ms == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    qs = (cadre_queue_depth *)(ms + in->members_n);
    for (size_t i = 0; i < in->members_n; i++) {
        cluster_copy_member(&in->members[i], &ms[i], qs);
        qs += in->members[i].queues_n;
    }
    *out = ms;
    return CADRE_OK;
}

int
cadre_cluster_members(cadre_client *c, cadre_member **out, size_t *out_n)
{
    struct msg    req = {.kind = MSG_ADMIN}, rep;
    cadre_member *ms = NULL;
    size_t        n;
    cd_err        err = {0};
    int           rc;

    if (c == NULL || out == NULL || out_n == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "cluster members: no client");
        return client_fail(&err);
    }
    *out = NULL;
    *out_n = 0;
    req.u.admin.op = MSG_ADMIN_CLUSTER_MEMBERS;
    rc = client_call(c, &req, c->timeout_ms, &rep, &err);
    if (rc == CADRE_OK && rep.kind != MSG_MEMBERS) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected reply");
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "cluster members");
        return client_fail(&err);
    }
    n = rep.u.members.members_n;
    rc = cluster_copy_members(&rep.u.members, &ms, &err);
    msg_free(&rep);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "cluster members");
        return client_fail(&err);
    }
    *out = ms;
    *out_n = n;
    return CADRE_OK;
}

const char *
cadre_raft_role_name(int role)
{
    switch (role) {
    case CADRE_RAFT_OFF:
        return "off";
    case CADRE_RAFT_FOLLOWER:
        return "follower";
    case CADRE_RAFT_CANDIDATE:
        return "candidate";
    case CADRE_RAFT_LEADER:
        return "leader";
    case CADRE_RAFT_UNAVAILABLE:
        return "unavailable";
    default:
        return "unknown";
    }
}

int
cadre_cluster_leader(cadre_client *c, cadre_leader_info *out)
{
    struct msg               req = {.kind = MSG_ADMIN}, rep;
    const struct msg_leader *l;
    cd_err                   err = {0};
    int                      rc;

    if (c == NULL || out == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "cluster leader: no client");
        return client_fail(&err);
    }
    memset(out, 0, sizeof(*out));
    req.u.admin.op = MSG_ADMIN_CLUSTER_LEADER;
    rc = client_call(c, &req, c->timeout_ms, &rep, &err);
    if (rc == CADRE_OK && rep.kind != MSG_ADMIN_REPLY) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected reply");
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "cluster leader");
        return client_fail(&err);
    }
    l = &rep.u.admin_reply.leader;
    cluster_copy_str(out->leader, sizeof(out->leader), l->leader);
    out->leader_raft_id = l->leader_raft_id;
    out->raft_id = l->raft_id;
    out->term = l->term;
    out->role = l->raft ? (int)l->role : CADRE_RAFT_OFF;
    out->ready = l->ready;
    out->not_committing = l->not_committing;
    out->oldest_wait_ms = l->oldest_wait_ms;
    out->commit_index = l->commit_index;
    out->last_applied = l->last_applied;
    msg_free(&rep);
    return CADRE_OK;
}
