/* batch.c: asynchronous dispatch. Jobs queued by cadre_dispatch_async from
 * any thread are sent by one background thread in bulk requests: while one
 * request is in flight the next batch gathers, so a producer gets one durable
 * commit per batch instead of per job (a Kafka-style producer). Ids are made
 * at enqueue time, so a batch whose reply was lost is sent again with the
 * same ids and stored once. */
#include <pthread.h>
#include <string.h>

#include "client/client.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/id.h"

#define BATCH_MAX_JOBS 1000
#define BATCH_MAX_BYTES (4u << 20)
#define BATCH_QUEUE_MAX 65536 /* producers block beyond this */
#define BATCH_TRIES 4         /* sends of one batch on transient errors */

struct batch_item {
    cadre_job_id       id;
    char              *task;
    uint8_t           *payload;
    size_t             payload_len;
    char              *queue;
    char              *unique_id;
    uint32_t          *backoff_s;
    cadre_job_opts     opts;
    cadre_dispatch_cb  cb;
    void              *arg;
    struct batch_item *next;
};

struct client_batcher {
    /* The sender thread's batch (here, not on its stack: 56 KiB). */
    struct batch_item *items[BATCH_MAX_JOBS];
    cadre_job_spec     specs[BATCH_MAX_JOBS];
    cadre_job_id       ids[BATCH_MAX_JOBS];
    pthread_mutex_t    mu;
    pthread_cond_t     cv;      /* the sender: work queued or stop */
    pthread_cond_t     idle_cv; /* producers and flushers */
    pthread_t          thread;
    struct batch_item *head, *tail;
    size_t             queued, inflight;
    int                stop;
};

static void
batch_item_free(struct batch_item *it)
{
    cd_free(it->task);
    cd_free(it->payload);
    cd_free(it->queue);
    cd_free(it->unique_id);
    cd_free(it->backoff_s);
    cd_free(it);
}

static struct batch_item *
batch_item_new(const char *task, const void *payload, size_t len,
               const cadre_job_opts *opts, cadre_dispatch_cb cb, void *arg)
{
    struct batch_item *it = cd_calloc(1, sizeof(*it));

    if (it == NULL)
        return NULL;
    if (opts != NULL)
        it->opts = *opts;
    it->task = cd_strdup(task ? task : "");
    it->payload = cd_memdup(payload, len);
    it->payload_len = len;
    it->queue = opts && opts->queue ? cd_strdup(opts->queue) : NULL;
    it->unique_id = opts && opts->unique_id ? cd_strdup(opts->unique_id) : NULL;
    if (opts && opts->backoff_n > 0)
        it->backoff_s =
            cd_memdup(opts->backoff_s, opts->backoff_n * sizeof(uint32_t));
    if (it->task == NULL || (len > 0 && it->payload == NULL) ||
        (opts && opts->queue && it->queue == NULL) ||
        (opts && opts->unique_id && it->unique_id == NULL) ||
        (opts && opts->backoff_n > 0 && it->backoff_s == NULL)) {
        batch_item_free(it);
        return NULL;
    }
    if (opts != NULL && opts->id != NULL)
        it->id = *opts->id;
    else
        cd_id_new(&it->id, cd_now_ms());
    it->opts.queue = it->queue;
    it->opts.unique_id = it->unique_id;
    it->opts.duplicate = NULL; /* the caller's memory may be gone by then */
    it->opts.backoff_s = it->backoff_s;
    it->opts.id = &it->id;
    it->cb = cb;
    it->arg = arg;
    return it;
}

static int
batch_transient(int rc)
{
    return rc == CADRE_ETIMEDOUT || rc == CADRE_ECONNREFUSED ||
           rc == CADRE_EIO || rc == CADRE_ECLOSED;
}

/* Sends items[0..n) as one bulk request, retrying transient errors with the
 * same ids. Returns the final code. */
static int
batch_send(cadre_client *c, struct batch_item **items, size_t n,
           cadre_job_spec *specs, cadre_job_id *ids)
{
    uint64_t pause_ms = 100;
    int      rc = CADRE_OK;

    for (size_t i = 0; i < n; i++)
        specs[i] = (cadre_job_spec){items[i]->task, items[i]->payload,
                                    items[i]->payload_len, &items[i]->opts};
    for (int t = 0; t < BATCH_TRIES; t++) {
        rc = cadre_dispatch_bulk(c, specs, n, ids);
        if (!batch_transient(rc))
            break;
        cd_sleep_ms(pause_ms);
        pause_ms *= 2;
    }
    return rc;
}

/* Sends one batch and reports each job. A batch the node refuses as a whole
 * (one bad job refuses its request) is split in halves until the bad jobs
 * stand alone: a few more requests, and only they get the error. */
static void
batch_deliver(cadre_client *c, struct batch_item **items, size_t n,
              cadre_job_spec *specs, cadre_job_id *ids)
{
    int rc = batch_send(c, items, n, specs, ids);

    if (rc != CADRE_OK && n > 1 && !batch_transient(rc)) {
        batch_deliver(c, items, n / 2, specs, ids);
        batch_deliver(c, items + n / 2, n - n / 2, specs, ids);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i]->cb != NULL)
            items[i]->cb(items[i]->arg, rc, &items[i]->id);
        batch_item_free(items[i]);
        items[i] = NULL;
    }
}

/* Takes up to BATCH_MAX_JOBS queued items (and BATCH_MAX_BYTES of payload).
 * Called with mu held. */
static size_t
batch_take(struct client_batcher *b, struct batch_item **items)
{
    size_t n = 0, bytes = 0;

    while (b->head != NULL && n < BATCH_MAX_JOBS &&
           (n == 0 || bytes + b->head->payload_len <= BATCH_MAX_BYTES)) {
        struct batch_item *it = b->head;

        b->head = it->next;
        if (b->head == NULL)
            b->tail = NULL;
        bytes += it->payload_len;
        items[n++] = it;
    }
    b->queued -= n;
    b->inflight = n;
    return n;
}

static void *
batch_main(void *arg)
{
    cadre_client          *c = arg;
    struct client_batcher *b = c->batcher;
    struct batch_item    **items = b->items;

    pthread_mutex_lock(&b->mu);
    for (;;) {
        size_t n;

        while (b->head == NULL && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->head == NULL)
            break; /* stopping and drained */
        n = batch_take(b, items);
        pthread_cond_broadcast(&b->idle_cv); /* room for producers */
        pthread_mutex_unlock(&b->mu);
        batch_deliver(c, items, n, b->specs, b->ids);
        pthread_mutex_lock(&b->mu);
        b->inflight = 0;
        pthread_cond_broadcast(&b->idle_cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Starts the batcher on first use. Serialised by the client's slot mutex,
 * which is held only briefly. */
static int
batch_start(cadre_client *c)
{
    struct client_batcher *b;
    int                    rc = CADRE_OK;

    pthread_mutex_lock(&c->slots_mu);
    if (c->batcher != NULL)
        goto out;
    b = cd_calloc(1, sizeof(*b));
    if (b == NULL) {
        rc = CADRE_ENOMEM;
        goto out;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_cond_init(&b->idle_cv, NULL);
    c->batcher = b;
    if (pthread_create(&b->thread, NULL, batch_main, c) != 0) {
        c->batcher = NULL;
        pthread_cond_destroy(&b->idle_cv);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        cd_free(b);
        rc = CADRE_ENOMEM;
    }
out:
    pthread_mutex_unlock(&c->slots_mu);
    return rc;
}

int
cadre_dispatch_async(cadre_client *c, const char *task, const void *payload,
                     size_t payload_len, const cadre_job_opts *opts,
                     cadre_dispatch_cb cb, void *arg)
{
    struct client_batcher *b;
    struct batch_item     *it;
    cd_err                 err = {0};

    if (c == NULL || task == NULL || task[0] == '\0') {
        cd_err_set(&err, CADRE_EINVAL, "dispatch_async: no task name");
        return client_fail(&err);
    }
    if (batch_start(c) != CADRE_OK) {
        cd_err_set(&err, CADRE_ENOMEM, "dispatch_async: cannot start sender");
        return client_fail(&err);
    }
    it = batch_item_new(task, payload, payload_len, opts, cb, arg);
    if (it == NULL) {
        cd_err_set(&err, CADRE_ENOMEM, "dispatch_async: out of memory");
        return client_fail(&err);
    }
    b = c->batcher;
    pthread_mutex_lock(&b->mu);
    while (b->queued >= BATCH_QUEUE_MAX && !b->stop)
        pthread_cond_wait(&b->idle_cv, &b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        batch_item_free(it);
        cd_err_set(&err, CADRE_ECLOSED, "dispatch_async: client closing");
        return client_fail(&err);
    }
    if (b->tail != NULL)
        b->tail->next = it;
    else
        b->head = it;
    b->tail = it;
    b->queued++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return CADRE_OK;
}

int
cadre_flush(cadre_client *c, uint64_t timeout_ms)
{
    struct client_batcher *b = c->batcher;
    uint64_t               deadline = cd_mono_ms() + timeout_ms;
    cd_err                 err = {0};
    int                    rc = CADRE_OK;

    if (b == NULL)
        return CADRE_OK;
    pthread_mutex_lock(&b->mu);
    while ((b->queued > 0 || b->inflight > 0) && rc == CADRE_OK) {
        struct timespec ts;
        uint64_t        now = cd_mono_ms();

        if (now >= deadline) {
            rc = CADRE_ETIMEDOUT;
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)((deadline - now) / 1000);
        ts.tv_nsec += (long)((deadline - now) % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->idle_cv, &b->mu, &ts);
    }
    pthread_mutex_unlock(&b->mu);
    if (rc != CADRE_OK) {
        cd_err_set(&err, rc, "flush: jobs still queued after %llu ms",
                   (unsigned long long)timeout_ms);
        return client_fail(&err);
    }
    return CADRE_OK;
}

void
client_batch_close(cadre_client *c)
{
    struct client_batcher *b = c->batcher;
    struct batch_item     *it;

    if (b == NULL)
        return;
    cadre_flush(c, c->timeout_ms);
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    /* What could not be sent in time is reported, not silently dropped. */
    it = b->head;
    b->head = b->tail = NULL;
    b->queued = 0;
    pthread_cond_broadcast(&b->cv);
    pthread_cond_broadcast(&b->idle_cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    while (it != NULL) {
        struct batch_item *next = it->next;

        if (it->cb != NULL)
            it->cb(it->arg, CADRE_ECLOSED, &it->id);
        batch_item_free(it);
        it = next;
    }
    pthread_cond_destroy(&b->idle_cv);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    cd_free(b);
    c->batcher = NULL;
}
