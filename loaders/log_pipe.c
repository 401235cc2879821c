/*
 * log_pipe.c: see log_pipe.h. Two batch slots pass between the reading
 * thread and the caller under one mutex: the reader fills a free slot and
 * marks it full; the caller takes full slots in order and frees each at its
 * next call. Strings are copied into the slot's arena by offset while
 * filling and turned into pointers when the slot is handed over, so the
 * arena may grow.
 */
#include "loaders/log_pipe.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_FULL, SLOT_TAKEN };

typedef struct slot {
    int state;
    log_item items[LOG_PIPE_BATCH];
    char *arena;
    size_t used, cap;
    log_batch batch;
    char errmsg[LSIM_ERRLEN];
} slot;

struct log_pipe {
    log_reader *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int started;
    slot slots[2];
    unsigned next_fill, next_take;
};

/* Copies s into the arena; returns its offset, or SIZE_MAX when out of memory. */
static size_t arena_put(slot *s, const char *str, size_t len)
{
    if (s->used + len + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : (1u << 20);
        while (nc < s->used + len + 1) nc *= 2;
        char *a = realloc(s->arena, nc);
        if (!a) return SIZE_MAX;
        s->arena = a;
        s->cap = nc;
    }
    size_t off = s->used;
    memcpy(s->arena + off, str, len);
    s->arena[off + len] = 0;
    s->used += len + 1;
    return off;
}

/* While filling, pointer fields hold arena offsets + 1 (as uintptr_t), so that
 * a bad line's message at offset 0 is not taken for NULL ("not bad"). */
#define OFF(x) ((const char *)(uintptr_t)((x) + 1))
#define PTR(s, p) ((s)->arena + ((uintptr_t)(p) - 1))

static int fill_slot(log_pipe *p, slot *s)
{
    s->used = 0;
    s->batch = (log_batch){0};
    size_t n = 0;
    int rc = 0;
    while (n < LOG_PIPE_BATCH) {
        log_event e;
        rc = log_reader_next(p->r, &e);
        if (rc == LOG_READ_EOF || rc < 0) break;
        log_item *it = &s->items[n];
        size_t o[4];
        if (rc == LOG_READ_BAD) {
            const char *m = log_reader_errmsg(p->r);
            if ((o[0] = arena_put(s, m, strlen(m))) == SIZE_MAX) return LSIM_E_NOMEM;
            memset(it, 0, sizeof *it);
            it->bad = OFF(o[0]);
        } else {
            if ((o[0] = arena_put(s, e.user, e.user_len)) == SIZE_MAX ||
                (o[1] = arena_put(s, e.item, e.item_len)) == SIZE_MAX ||
                (o[2] = arena_put(s, e.cat, e.cat_len)) == SIZE_MAX ||
                (o[3] = arena_put(s, e.type, e.type_len)) == SIZE_MAX)
                return LSIM_E_NOMEM;
            it->ev = e;
            it->ev.user = OFF(o[0]);
            it->ev.item = OFF(o[1]);
            it->ev.cat = OFF(o[2]);
            it->ev.type = OFF(o[3]);
            it->bad = NULL;
        }
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        log_item *it = &s->items[i];
        if (it->bad) {
            it->bad = PTR(s, it->bad);
            continue;
        }
        it->ev.user = PTR(s, it->ev.user);
        it->ev.item = PTR(s, it->ev.item);
        it->ev.cat = PTR(s, it->ev.cat);
        it->ev.type = PTR(s, it->ev.type);
    }
    s->batch.items = s->items;
    s->batch.n = n;
    s->batch.bytes_read = log_reader_bytes_read(p->r);
    if (rc == LOG_READ_EOF || rc < 0) {
        s->batch.last = 1;
        s->batch.rc = rc < 0 ? rc : 0;
        if (rc < 0) {
            snprintf(s->errmsg, sizeof s->errmsg, "%s", log_reader_errmsg(p->r));
            s->batch.errmsg = s->errmsg;
        }
    }
    return 0;
}

static void *reader_main(void *arg)
{
    log_pipe *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        slot *s = &p->slots[p->next_fill];
        while (!p->stop && s->state != SLOT_FREE) pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        pthread_mutex_unlock(&p->mu);
        int rc = fill_slot(p, s);
        if (rc) {
            s->batch = (log_batch){.items = s->items, .n = 0, .last = 1, .rc = rc, .errmsg = "out of memory"};
        }
        pthread_mutex_lock(&p->mu);
        s->state = SLOT_FULL;
        p->next_fill ^= 1;
        pthread_cond_broadcast(&p->cv);
        int last = s->batch.last;
        pthread_mutex_unlock(&p->mu);
        if (last) return NULL;
    }
}

int log_pipe_open(log_pipe **out, const char *path, const log_spec *spec, char *err, size_t errlen)
{
    *out = NULL;
    log_pipe *p = calloc(1, sizeof *p);
    if (!p) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    int rc = log_reader_open(&p->r, path, spec, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, reader_main, p) != 0) {
        log_pipe_close(p);
        return err_set(err, errlen, LSIM_E_NOMEM, "cannot start the reading thread");
    }
    p->started = 1;
    *out = p;
    return 0;
}

const log_batch *log_pipe_next(log_pipe *p)
{
    pthread_mutex_lock(&p->mu);
    slot *prev = &p->slots[p->next_take ^ 1];
    if (prev->state == SLOT_TAKEN) {
        prev->state = SLOT_FREE;
        pthread_cond_broadcast(&p->cv);
    }
    slot *s = &p->slots[p->next_take];
    while (s->state != SLOT_FULL) pthread_cond_wait(&p->cv, &p->mu);
    s->state = SLOT_TAKEN;
    p->next_take ^= 1;
    pthread_mutex_unlock(&p->mu);
    return &s->batch;
}

uint64_t log_pipe_bytes_total(const log_pipe *p)
{
    return log_reader_bytes_total(p->r);
}

void log_pipe_close(log_pipe *p)
{
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    log_reader_close(p->r);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    for (int i = 0; i < 2; i++) free(p->slots[i].arena);
    free(p);
}
