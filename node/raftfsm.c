/* raftfsm.c: the struct raft_fsm over node/fsm.h (apply, snapshot,
 * restore) and the padded entry framing. It never calls into a raft
 * instance: libraft calls it. */
#include "node/raftfsm.h"

#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "common/log.h"

static size_t
raftfsm_entry_size(size_t cmd_len)
{
    return (RAFTFSM_ENTRY_HDR + cmd_len + 7) / 8 * 8;
}

/* Never fails (notes §1.5 #6: libraft stops applying on the first error and
 * the node wedges): a bad entry is INVALID inside the answer. */
static int
raftfsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct raftfsm *r = rf->data;
    const uint8_t  *p = buf->base;
    size_t          len = 0;

    if (buf->len >= RAFTFSM_ENTRY_HDR) {
        len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 |
              (size_t)p[3];
        if (len > buf->len - RAFTFSM_ENTRY_HDR)
            len = 0; /* fsm_apply answers INVALID */
    }
    fsm_apply(r->fsm,
              p + (buf->len >= RAFTFSM_ENTRY_HDR ? RAFTFSM_ENTRY_HDR : 0), len,
              &r->applied);
    r->applied_n++;
    /* Read by the apply callback, which libraft calls right after this
     * returns (on the leader only); followers ignore it. */
    *result = &r->applied;
    return 0;
}

/* Copies the snapshot into raft_malloc buffers: with fsm.version 1 libraft
 * frees them (bufs and bufs[0].base). */
static int
raftfsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                 unsigned *n_bufs)
{
    struct raftfsm     *r = rf->data;
    struct raft_buffer *b;
    uint8_t            *snap = NULL;
    size_t              len = 0;

    if (fsm_snapshot(r->fsm, &snap, &len) != CADRE_OK)
        return RAFT_NOMEM;
    b = raft_malloc(sizeof(*b));
    if (b == NULL) {
        cd_free(snap);
        return RAFT_NOMEM;
    }
    b->len = len;
    b->base = raft_malloc(len > 0 ? len : 1);
    if (b->base == NULL) {
        raft_free(b);
        cd_free(snap);
        return RAFT_NOMEM;
    }
    memcpy(b->base, snap, len);
    cd_free(snap);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

/* Takes buf->base (raft_free) whatever the outcome. */
static int
raftfsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct raftfsm *r = rf->data;
    int             rc = fsm_restore(r->fsm, buf->base, buf->len);

    raft_free(buf->base);
    if (rc != CADRE_OK) {
        /* Tag and event id as before the move out of leader.c: operators
         * may alert on them. */
        CD_LOG_ERR("leader", "LEADER-RESTORE", "error=%s len=%zu",
                   cadre_strerror(rc), buf->len);
        return RAFT_CORRUPT;
    }
    r->restored_n++;
    return 0;
}

void
raftfsm_init(struct raftfsm *r, struct fsm *f)
{
    memset(r, 0, sizeof(*r));
    r->fsm = f;
    r->rf.version = 1;
    r->rf.data = r;
    r->rf.apply = raftfsm_apply;
    r->rf.snapshot = raftfsm_snapshot;
    r->rf.restore = raftfsm_restore;
}

const struct fsm_result *
raftfsm_last(const struct raftfsm *r)
{
    return &r->applied;
}

int
raftfsm_encode(const struct fsm_cmd *c, struct raft_buffer *out)
{
    uint8_t *base;
    size_t   len = fsm_cmd_size(c);
    size_t   size;

    if (len == 0)
        return CADRE_EINVAL;
    size = raftfsm_entry_size(len);
    base = raft_calloc(1, size); /* the padding stays zero */
    if (base == NULL)
        return CADRE_ENOMEM;
    if (fsm_cmd_encode(c, base + RAFTFSM_ENTRY_HDR, len, &len) != CADRE_OK) {
        raft_free(base);
        return CADRE_EINVAL;
    }
    base[0] = (uint8_t)(len >> 24);
    base[1] = (uint8_t)(len >> 16);
    base[2] = (uint8_t)(len >> 8);
    base[3] = (uint8_t)len;
    out->base = base;
    out->len = size;
    return CADRE_OK;
}
