/*
 * test_corrupt.c: an index or a checkpoint with a flipped byte, or cut short,
 * is refused as corrupt, never read as data (issue 7; docs/RELIABILITY.md,
 * "Corrupt files: flipped bytes and truncation").
 *
 * The files: a small index (a generated log, built from its first 80% in time
 * and appended the rest, so that data.mdb holds every kind of LMDB page: the
 * two meta pages, branch, leaf and overflow pages, the free list, and the
 * pages the append freed) and a small SIM soft checkpoint trained on it.
 *
 * A case changes the copy of the file that the probes read (one bit of one
 * byte flipped, or the file cut at a length), and runs each reading path in
 * a process of its own, so that a crash or a hang is caught and counted:
 *   verify  `lsim index verify`                                          (exec)
 *   read    every event of every user: all categories, then each of the
 *           user's categories, through lsim_index_hard_search            (fork)
 *   engine  lsim_engine_open, then lsim_score of 8 items for every user  (fork)
 *   score   `lsim score` of the longest user                             (exec)
 * (a checkpoint case runs engine and score: the others do not read it; for
 * 15 of 16 header bytes, engine alone, many offsets to a process, and the
 * offsets a crash leaves unreported are run again one to a process).
 *
 * A probe's outcome: the same output as on the pristine file; refused as
 * corrupt (exit 1, LSIM_E_CORRUPT for the library probes, and a message that
 * names the file and says "corrupt"); refused with another error or message
 * (a defect: the caller is told the wrong thing); a different output with
 * success (silent: a defect); a signal or a hang (a defect). A case is
 * refused when at least one probe refused it as corrupt and the others gave
 * the pristine output; unused when every probe gave the pristine output (the
 * byte is free space, padding, or a field no reader uses).
 *
 * LSIM_CORRUPT_VERBOSE=1 prints every case.
 */
#include "lsim.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_TIMEOUT_S 30 /* a probe still running after this is a hang */
#define N_ITEMS 8          /* candidates per scored user */
#define MAX_DEFECTS_SHOWN 25

/* ---- files ---- */

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert(b && fread(b, 1, (size_t)n, f) == (size_t)n, "cannot read %s", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_file(const char *path, const unsigned char *data, size_t len)
{
    cr_assert_eq(tu_write_file(path, (const char *)data, len), 0, "cannot write %s", path);
}

/* Flips bit `bit` of the byte at off of the file, in place. */
static void flip_at(const char *path, size_t off, int bit)
{
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0, "cannot open %s", path);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= (unsigned char)(1u << bit);
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

/* Runs lsim; exits the test on failure. */
static void lsim_ok(const char *const *argv)
{
    char *err = NULL;
    int rc = tu_run_lsim(argv, NULL, &err);
    cr_assert_eq(rc, 0, "lsim %s %s: %s", argv[0], argv[1], err);
    free(err);
}

/* ---- the fixture: log, index, checkpoint, what the probes read ---- */

typedef struct fixture {
    char *dir, *log, *log_a, *log_b;
    char *idx, *ckpt;       /* pristine */
    char *work_idx, *work_mdb, *work_lock, *work_ckpt; /* the copies the probes read */
    char **users;           /* distinct raw users, in order of appearance */
    size_t n_users;
    char **pair_user, **pair_cat; /* distinct (user, category) */
    size_t n_pairs;
    char *items[N_ITEMS];   /* scored for every user */
    char *long_user;        /* the user with the most events */
    char items_csv[512];
    char now[32];
    size_t n_events;
    /* the pristine outputs */
    char *want_verify, *want_read, *want_engine, *want_score;
} fixture;

static int find_str(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return (int)i;
    return -1;
}

/* Reads the generated log: users, (user, category) pairs, items, the time
 * range; writes its first 80% in time to log_a and the rest to log_b. */
static void read_log(fixture *fx)
{
    size_t len;
    char *text = (char *)read_file(fx->log, &len);
    text[len] = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        char *ts = strrchr(p, ',');
        int64_t t = strtoll(ts + 1, NULL, 10);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
        p = nl ? nl + 1 : p + strlen(p);
    }
    int64_t cut = lo + (hi - lo) * 4 / 5;
    FILE *a = fopen(fx->log_a, "w"), *b = fopen(fx->log_b, "w");
    cr_assert(a && b);
    size_t cap = 4096, *counts = calloc(cap, sizeof *counts);
    fx->users = calloc(cap, sizeof *fx->users);
    fx->pair_user = calloc(cap * 8, sizeof *fx->pair_user);
    fx->pair_cat = calloc(cap * 8, sizeof *fx->pair_cat);
    size_t n_items = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        char line[256];
        cr_assert(l < sizeof line);
        memcpy(line, p, l);
        line[l] = 0;
        p += l + (nl != NULL);
        char *f[5], *s = line;
        for (int i = 0; i < 5; i++) f[i] = strsep(&s, ",");
        cr_assert(f[4], "bad log line");
        fprintf(strtoll(f[4], NULL, 10) < cut ? a : b, "%s,%s,%s,%s,%s\n", f[0], f[1], f[2], f[3], f[4]);
        fx->n_events++;
        int u = find_str(fx->users, fx->n_users, f[0]);
        if (u < 0) {
            cr_assert(fx->n_users < cap);
            u = (int)fx->n_users;
            fx->users[fx->n_users++] = strdup(f[0]);
        }
        counts[u]++;
        size_t j = 0;
        while (j < fx->n_pairs && (strcmp(fx->pair_user[j], f[0]) || strcmp(fx->pair_cat[j], f[2]))) j++;
        if (j == fx->n_pairs) {
            cr_assert(fx->n_pairs < cap * 8);
            fx->pair_user[j] = fx->users[u];
            fx->pair_cat[j] = strdup(f[2]);
            fx->n_pairs++;
        }
        if (n_items < N_ITEMS && find_str(fx->items, n_items, f[1]) < 0) fx->items[n_items++] = strdup(f[1]);
    }
    cr_assert_eq(n_items, N_ITEMS);
    fclose(a);
    fclose(b);
    size_t best = 0;
    for (size_t u = 1; u < fx->n_users; u++)
        if (counts[u] > counts[best]) best = u;
    fx->long_user = fx->users[best];
    fx->items_csv[0] = 0;
    for (size_t i = 0; i < N_ITEMS; i++) {
        if (i) strcat(fx->items_csv, ",");
        strcat(fx->items_csv, fx->items[i]);
    }
    snprintf(fx->now, sizeof fx->now, "%" PRId64, hi + 1);
    free(counts);
    free(text);
}

static void fixture_make(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->dir = tu_tmpdir("flips"); /* not "corrupt": the paths are in the messages */
    cr_assert(fx->dir);
    fx->log = path_in(fx->dir, "log.csv");
    fx->log_a = path_in(fx->dir, "log_a.csv");
    fx->log_b = path_in(fx->dir, "log_b.csv");
    fx->idx = path_in(fx->dir, "idx");
    fx->ckpt = path_in(fx->dir, "sim.safetensors");
    fx->work_idx = path_in(fx->dir, "work");
    fx->work_mdb = path_in(fx->work_idx, "data.mdb");
    fx->work_lock = path_in(fx->work_idx, "lock.mdb");
    fx->work_ckpt = path_in(fx->dir, "work.safetensors");
    lsim_ok((const char *const[]){"gen", "log", "--users", "30", "--min-len", "20", "--max-len", "1000", "--days",
                                  "10", "--seed", "7", "--out", fx->log, NULL});
    read_log(fx);
    lsim_ok((const char *const[]){"index", "build", "--index", fx->idx, "--input", fx->log_a, NULL});
    lsim_ok((const char *const[]){"index", "append", "--index", fx->idx, "--input", fx->log_b, NULL});
    lsim_ok((const char *const[]){"train", "--index", fx->idx, "--model", "sim-soft", "--out", fx->ckpt, "--steps",
                                  "3", "--batch", "32", "--threads", "1", NULL});
    cr_assert_eq(mkdir(fx->work_idx, 0755), 0);
}

static void fixture_free(fixture *fx)
{
    tu_rmrf(fx->dir);
    for (size_t i = 0; i < fx->n_users; i++) free(fx->users[i]);
    for (size_t i = 0; i < fx->n_pairs; i++) free(fx->pair_cat[i]);
    for (size_t i = 0; i < N_ITEMS; i++) free(fx->items[i]);
    free(fx->users), free(fx->pair_user), free(fx->pair_cat);
    free(fx->dir), free(fx->log), free(fx->log_a), free(fx->log_b), free(fx->idx), free(fx->ckpt);
    free(fx->work_idx), free(fx->work_mdb), free(fx->work_lock), free(fx->work_ckpt);
    free(fx->want_verify), free(fx->want_read), free(fx->want_engine), free(fx->want_score);
}

/* ---- running a probe in a process of its own ---- */

static char *slurp(int fd)
{
    lseek(fd, 0, SEEK_SET);
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) b = realloc(b, cap *= 2);
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    b[n] = 0;
    close(fd);
    return b;
}

static int scratch_fd(const char *dir)
{
    char *p = path_in(dir, "probe-XXXXXX");
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    unlink(p);
    free(p);
    return fd;
}

enum { RUN_CRASH = -1, RUN_HANG = -2 };

/* Runs lsim with argv (exec) or fn(fx) (fork only) in a child; its stdout and
 * stderr in *out, *err. The exit status, RUN_CRASH on a signal, RUN_HANG when
 * it outlived PROBE_TIMEOUT_S. */
static int spawn(const fixture *fx, const char *const *argv, int (*fn)(const fixture *), char **out, char **err)
{
    int ofd = scratch_fd(fx->dir), efd = scratch_fd(fx->dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        alarm(PROBE_TIMEOUT_S);
        if (argv) {
            size_t n = 0;
            while (argv[n]) n++;
            const char **full = calloc(n + 2, sizeof *full);
            full[0] = tu_lsim_bin();
            memcpy(full + 1, argv, n * sizeof *argv);
            execv(full[0], (char *const *)full);
            _exit(127);
        }
        int rc = fn(fx);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    *out = slurp(ofd);
    *err = slurp(efd);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? RUN_HANG : RUN_CRASH;
}

/* A library probe's failure: the message on stderr; exit 1 for LSIM_E_CORRUPT, 3 for any other code. */
static int child_fail(const char *what, int rc, const char *msg)
{
    fprintf(stderr, "%s: %s: %s\n", what, lsim_strerror(rc), msg);
    return rc == LSIM_E_CORRUPT ? 1 : 3;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_events(uint64_t h, const lsim_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = fnv(h, ev[i].item, strlen(ev[i].item) + 1);
        h = fnv(h, ev[i].category, strlen(ev[i].category) + 1);
        h = fnv(h, ev[i].type, strlen(ev[i].type) + 1);
        h = fnv(h, &ev[i].ts, sizeof ev[i].ts);
    }
    return h;
}

/* read: every event of every user, all categories, then each category. */
static int probe_read(const fixture *fx)
{
    char err[512];
    lsim_index *ix;
    int rc = lsim_index_open(&ix, fx->work_idx, err, sizeof err);
    if (rc) return child_fail("lsim_index_open", rc, err);
    lsim_index_reader *rd;
    if ((rc = lsim_index_reader_new(ix, &rd))) return child_fail("lsim_index_reader_new", rc, "");
    size_t cap = fx->n_events + 1, n = 0, total = 0;
    lsim_event *ev = malloc(cap * sizeof *ev);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t u = 0; u < fx->n_users; u++) {
        const char *user = fx->users[u];
        if ((rc = lsim_index_hard_search(rd, user, strlen(user), NULL, 0, INT64_MAX, cap, ev, &n)))
            return child_fail("lsim_index_hard_search", rc, lsim_index_reader_errmsg(rd));
        h = fnv_events(fnv(h, user, strlen(user) + 1), ev, n);
        total += n;
    }
    for (size_t p = 0; p < fx->n_pairs; p++) {
        const char *user = fx->pair_user[p], *cat = fx->pair_cat[p];
        if ((rc = lsim_index_hard_search(rd, user, strlen(user), cat, strlen(cat), INT64_MAX, cap, ev, &n)))
            return child_fail("lsim_index_hard_search", rc, lsim_index_reader_errmsg(rd));
        h = fnv_events(fnv(h, cat, strlen(cat) + 1), ev, n);
    }
    printf("%zu events, hash %016" PRIx64 "\n", total, h);
    free(ev);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return 0;
}

/* The engine probe's work: lsim_engine_open on the work index and checkpoint, every user scored. 0 and the
 * scores' hash in out, or the code and "FUNCTION: detail" in msg. */
static int engine_run(const fixture *fx, char *out, size_t outlen, char *msg, size_t msglen)
{
    char err[512];
    lsim_settings s;
    lsim_settings_default(&s);
    s.max_candidates = N_ITEMS;
    lsim_engine *e;
    int rc = lsim_engine_open(&e, fx->work_idx, fx->work_ckpt, &s, err, sizeof err);
    if (rc) return snprintf(msg, msglen, "lsim_engine_open: %s", err), rc;
    lsim_ctx *c;
    if ((rc = lsim_ctx_new(e, &c))) {
        lsim_engine_close(e);
        return snprintf(msg, msglen, "lsim_ctx_new"), rc;
    }
    lsim_candidate cand[N_ITEMS];
    for (size_t i = 0; i < N_ITEMS; i++) cand[i] = (lsim_candidate){fx->items[i], strlen(fx->items[i]), NULL, 0};
    float scores[N_ITEMS];
    uint64_t h = 0xcbf29ce484222325ULL;
    int64_t now = strtoll(fx->now, NULL, 10);
    for (size_t u = 0; u <= fx->n_users && !rc; u++) {
        const char *user = u < fx->n_users ? fx->users[u] : "no-such-user";
        if ((rc = lsim_score(c, user, strlen(user), now, cand, N_ITEMS, scores)))
            snprintf(msg, msglen, "lsim_score: %s", lsim_ctx_errmsg(c));
        h = fnv(h, scores, sizeof scores);
    }
    if (!rc) snprintf(out, outlen, "scores hash %016" PRIx64 "\n", h);
    lsim_ctx_free(c);
    lsim_engine_close(e);
    return rc;
}

/* engine, as a probe of its own. */
static int probe_engine(const fixture *fx)
{
    char out[64], msg[1024];
    int rc = engine_run(fx, out, sizeof out, msg, sizeof msg);
    if (rc) return child_fail("engine", rc, msg);
    fputs(out, stdout);
    return 0;
}

/* engine over many one-byte flips of the checkpoint in one process (the
 * header's bytes: thousands of cases): for each offset, flip, run, flip
 * back, one line "OFFSET<tab>CODE<tab>output or message". The parent runs
 * the offsets a crash left without a line one by one. */
static const size_t *batch_offs;
static size_t batch_n;

static int flip_quiet(const char *path, size_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    int ok = fd >= 0 && pread(fd, &c, 1, (off_t)off) == 1 && (c ^= (unsigned char)(1u << (off * 5 % 8)), 1) &&
             pwrite(fd, &c, 1, (off_t)off) == 1;
    if (fd >= 0) close(fd);
    return ok ? 0 : -1;
}

static int probe_engine_batch(const fixture *fx)
{
    for (size_t i = 0; i < batch_n; i++) {
        char out[64] = "", msg[1024] = "";
        if (flip_quiet(fx->work_ckpt, batch_offs[i])) return 4;
        int rc = engine_run(fx, out, sizeof out, msg, sizeof msg);
        if (flip_quiet(fx->work_ckpt, batch_offs[i])) return 4;
        for (char *q = msg; *q; q++)
            if (*q == '\n' || *q == '\t') *q = ' ';
        printf("%zu\t%d\t%s%s", batch_offs[i], rc, rc ? msg : out, rc ? "\n" : "");
        fflush(stdout);
    }
    return 0;
}

/* ---- outcomes ---- */

enum { OUT_SAME, OUT_REFUSED, OUT_WRONG, OUT_SILENT, OUT_CRASH, OUT_KINDS };
static const char *const out_names[OUT_KINDS] = {"unused", "refused", "wrong error", "silent", "crashed"};

typedef enum { PROBE_VERIFY, PROBE_READ, PROBE_ENGINE, PROBE_SCORE, PROBE_KINDS } probe_kind;
static const char *const probe_names[PROBE_KINDS] = {"verify", "read", "engine", "score"};

/* A refusal's message: it names the file and says "corrupt" (outside the file's name). */
static int message_refuses(const char *msg, const char *file)
{
    const char *at = strstr(msg, file);
    if (!at) return 0;
    size_t n = strlen(file);
    for (const char *p = msg; *p; p++) {
        if (p == at) {
            p += n - 1;
            continue;
        }
        if (!strncasecmp(p, "corrupt", 7)) return 1;
    }
    return 0;
}

static int run_probe(const fixture *fx, probe_kind k, char **out, char **err)
{
    switch (k) {
    case PROBE_VERIFY: return spawn(fx, (const char *const[]){"index", "verify", "--index", fx->work_idx, NULL},
                                    NULL, out, err);
    case PROBE_READ: return spawn(fx, NULL, probe_read, out, err);
    case PROBE_ENGINE: return spawn(fx, NULL, probe_engine, out, err);
    default:
        return spawn(fx, (const char *const[]){"score", "--index", fx->work_idx, "--model", fx->work_ckpt, "--user",
                                               fx->long_user, "--now", fx->now, "--items", fx->items_csv, "--json",
                                               NULL},
                     NULL, out, err);
    }
}

static char **want_of(fixture *fx, probe_kind k)
{
    return k == PROBE_VERIFY ? &fx->want_verify
         : k == PROBE_READ   ? &fx->want_read
         : k == PROBE_ENGINE ? &fx->want_engine
                             : &fx->want_score;
}

/* The outcome of probe k on the work files; a line about it in why. `file` is
 * the path the message must name. */
static int probe_outcome(fixture *fx, probe_kind k, const char *file, char *why, size_t whylen)
{
    char *out = NULL, *err = NULL;
    int st = run_probe(fx, k, &out, &err);
    const char *want = *want_of(fx, k);
    int o;
    if (st == RUN_CRASH || st == RUN_HANG) o = OUT_CRASH;
    else if (st == 0) o = strcmp(out, want) ? OUT_SILENT : OUT_SAME;
    else if (st == 1 && (message_refuses(out, file) || message_refuses(err, file)))
        o = OUT_REFUSED;
    else o = OUT_WRONG;
    char *nl = strchr(err, '\n');
    if (nl && o != OUT_REFUSED) *nl = ' '; /* keep two lines of a wrong error */
    snprintf(why, whylen, "%s: %s (exit %d): %.300s%s%.200s", probe_names[k], out_names[o], st, err,
             o == OUT_SILENT ? " / stdout: " : "", o == OUT_SILENT ? out : "");
    for (char *p = why; *p; p++)
        if (*p == '\n') *p = ' ';
    free(out);
    free(err);
    return o;
}

typedef struct tally {
    const char *what;
    int n, count[OUT_KINDS];
    int shown;
    int by_region[32][OUT_KINDS];
    const char *region_names[32];
    int n_regions;
} tally;

/* Counts a case whose probes gave o[0..n) (why[i]: a line about each). Its outcome is the worst probe's (crash >
 * silent > wrong), else refused if any probe refused, else unused. */
static int tally_add(tally *t, const int *o, char (*why)[700], size_t n, const char *label, const char *region)
{
    int worst = OUT_SAME;
    for (size_t i = 0; i < n; i++)
        if (o[i] > worst) worst = o[i];
    t->n++;
    t->count[worst]++;
    int r = 0;
    while (r < t->n_regions && strcmp(t->region_names[r], region)) r++;
    if (r == t->n_regions && r < 32) t->region_names[t->n_regions++] = region;
    if (r < 32) t->by_region[r][worst]++;
    int verbose = getenv("LSIM_CORRUPT_VERBOSE") != NULL;
    if (worst >= OUT_WRONG && t->shown < MAX_DEFECTS_SHOWN) t->shown++, verbose = 1;
    if (verbose) {
        fprintf(stderr, "%s %s [%s]: %s\n", t->what, label, region, out_names[worst]);
        for (size_t i = 0; i < n; i++)
            if (o[i] != OUT_SAME || getenv("LSIM_CORRUPT_VERBOSE")) fprintf(stderr, "    %s\n", why[i]);
    }
    return worst;
}

/* Runs the probes on the current work files and counts the case. */
static int run_case(fixture *fx, tally *t, const probe_kind *probes, size_t n_probes, const char *file,
                    const char *label, const char *region)
{
    char why[PROBE_KINDS][700];
    int o[PROBE_KINDS];
    for (size_t i = 0; i < n_probes; i++) o[i] = probe_outcome(fx, probes[i], file, why[i], sizeof why[i]);
    return tally_add(t, o, why, n_probes, label, region);
}

/* The outcome of the engine probe from a line of probe_engine_batch. */
static int batch_outcome(const fixture *fx, int rc, const char *text, char *why, size_t whylen)
{
    int o;
    if (rc == 0) o = strcmp(text, fx->want_engine) ? OUT_SILENT : OUT_SAME;
    else if (rc == LSIM_E_CORRUPT && message_refuses(text, fx->work_ckpt)) o = OUT_REFUSED;
    else o = OUT_WRONG;
    snprintf(why, whylen, "engine: %s (code %d): %.400s", out_names[o], rc, text);
    for (char *p = why; *p; p++)
        if (*p == '\n') *p = ' ';
    return o;
}

/* Flips of the checkpoint at offs[0..n), the engine probe only, in batches of one process each. */
static void run_engine_batches(fixture *fx, tally *t, const size_t *offs, size_t n, const unsigned char *pristine,
                               size_t len, const char *region)
{
    const size_t per = 256;
    for (size_t b = 0; b < n; b += per) {
        batch_offs = offs + b;
        batch_n = n - b < per ? n - b : per;
        char *out = NULL, *err = NULL;
        int st = spawn(fx, NULL, probe_engine_batch, &out, &err);
        size_t done = 0;
        for (char *line = out; line && *line && done < batch_n;) {
            char *nl = strchr(line, '\n');
            if (!nl) break; /* a line cut by a crash */
            *nl = 0;
            char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
            cr_assert(tab2, "batch output: %s", line);
            size_t off = strtoull(line, NULL, 10);
            cr_assert_eq(off, batch_offs[done]);
            int rc = atoi(tab1 + 1);
            char text[1100];
            snprintf(text, sizeof text, "%s%s", tab2 + 1, rc == 0 ? "\n" : "");
            char why[1][700], label[64];
            int o[1] = {batch_outcome(fx, rc, text, why[0], sizeof why[0])};
            snprintf(label, sizeof label, "flip at %zu", off);
            tally_add(t, o, why, 1, label, region);
            done++;
            line = nl + 1;
        }
        free(out);
        free(err);
        if (st == 0 && done == batch_n) continue;
        write_file(fx->work_ckpt, pristine, len); /* a crash may have left a byte flipped */
        const probe_kind engine_only[] = {PROBE_ENGINE};
        for (size_t i = done; i < batch_n; i++) { /* one by one: the crash is caught and counted */
            char label[64];
            snprintf(label, sizeof label, "flip at %zu", batch_offs[i]);
            flip_at(fx->work_ckpt, batch_offs[i], (int)(batch_offs[i] * 5 % 8));
            run_case(fx, t, engine_only, 1, fx->work_ckpt, label, region);
            flip_at(fx->work_ckpt, batch_offs[i], (int)(batch_offs[i] * 5 % 8));
        }
    }
}

static void tally_print(const tally *t, const char *kind)
{
    fprintf(stderr, "corrupt: %s %d %s: %d refused, %d unused, %d silent, %d crashed, %d wrong error\n", t->what, t->n,
            kind, t->count[OUT_REFUSED], t->count[OUT_SAME], t->count[OUT_SILENT], t->count[OUT_CRASH],
            t->count[OUT_WRONG]);
    for (int r = 0; r < t->n_regions; r++)
        fprintf(stderr, "    %-22s %4d refused, %4d unused, %d silent, %d crashed, %d wrong error\n",
                t->region_names[r], t->by_region[r][OUT_REFUSED], t->by_region[r][OUT_SAME],
                t->by_region[r][OUT_SILENT], t->by_region[r][OUT_CRASH], t->by_region[r][OUT_WRONG]);
}

static void baseline(fixture *fx, const probe_kind *probes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *out, *err;
        int st = run_probe(fx, probes[i], &out, &err);
        cr_assert_eq(st, 0, "%s on the pristine files: exit %d: %s", probe_names[probes[i]], st, err);
        free(err);
        free(*want_of(fx, probes[i]));
        *want_of(fx, probes[i]) = out;
    }
}

/* ---- LMDB's page layout (lmdb.h, mdb.c of LMDB 0.9; little-endian x86-64) ---- */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

enum { PG_META, PG_BRANCH, PG_LEAF, PG_OVERFLOW, PG_PREV, PG_FREE, PG_KINDS };
static const char *const page_names[PG_KINDS] = {"meta", "branch", "leaf", "overflow", "previous commit's",
                                                 "free"};

#define PAGEHDR 16
#define META_END (PAGEHDR + 136) /* MDB_meta: magic, version, address, mapsize, 2 MDB_db, last_pg, txnid */

/* Marks the pages of the B-tree rooted at pg with their kind and database (db: its name, "free list" for the free
 * list's own tree). */
static void walk_tree(const unsigned char *d, size_t len, size_t ps, uint64_t pg, int *kind, char (*db)[16],
                      const char *name, int depth)
{
    if (pg == ~(uint64_t)0 || (pg + 1) * ps > len || depth > 16) return;
    const unsigned char *p = d + pg * ps;
    uint16_t flags = rd16(p + 10), lower = rd16(p + 12);
    kind[pg] = (flags & 1) ? PG_BRANCH : PG_LEAF;
    snprintf(db[pg], sizeof db[pg], "%s", name);
    for (size_t i = 0; i < (size_t)(lower - PAGEHDR) / 2 && lower <= ps; i++) {
        const unsigned char *nd = p + rd16(p + PAGEHDR + 2 * i);
        if (flags & 1) {
            walk_tree(d, len, ps, rd16(nd) | (uint64_t)rd16(nd + 2) << 16 | (uint64_t)rd16(nd + 4) << 32, kind, db,
                      name, depth + 1);
            continue;
        }
        uint16_t nflags = rd16(nd + 4), ksize = rd16(nd + 6);
        const unsigned char *data = nd + 8 + ksize;
        if (nflags & 1) { /* F_BIGDATA: the value on overflow pages */
            uint64_t op = rd64(data);
            if ((op + 1) * ps > len) continue;
            uint32_t pages = rd32(d + op * ps + 12);
            for (uint64_t q = op; q < op + pages && (q + 1) * ps <= len; q++) {
                kind[q] = PG_OVERFLOW;
                snprintf(db[q], sizeof db[q], "%s", name);
            }
        } else if (nflags & 2) { /* F_SUBDATA: a named database, its MDB_db */
            char sub[16];
            snprintf(sub, sizeof sub, "%.*s", ksize < 15 ? ksize : 15, (const char *)nd + 8);
            walk_tree(d, len, ps, rd64(data + 40), kind, db, sub, 0);
        }
    }
}

/* The kind and database of every page of data.mdb, from the meta page with the newest transaction. */
static size_t page_kinds(const unsigned char *d, size_t len, int **out, char (**dbs)[16], size_t *psize,
                         int *cur_meta)
{
    cr_assert(len >= 2 * 4096 && rd32(d + 16) == 0xBEEFC0DEu, "data.mdb: not an LMDB file");
    size_t ps = rd32(d + 40); /* the free list's md_pad holds the page size */
    size_t n = len / ps;
    int *kind = malloc(n * sizeof *kind);
    char(*db)[16] = calloc(n, sizeof *db);
    for (size_t i = 0; i < n; i++) kind[i] = PG_FREE;
    kind[0] = kind[1] = PG_META;
    int m = rd64(d + ps + 144) > rd64(d + 144);
    const unsigned char *meta = d + (size_t)m * ps + PAGEHDR;
    walk_tree(d, len, ps, rd64(meta + 24 + 40), kind, db, "free list", 0); /* mm_dbs[FREE_DBI] */
    walk_tree(d, len, ps, rd64(meta + 72 + 40), kind, db, "main", 0);      /* mm_dbs[MAIN_DBI] */
    /* the pages of the previous commit's snapshot that the newest no longer uses (free, but intact) */
    int *prev = malloc(n * sizeof *prev);
    char(*pdb)[16] = calloc(n, sizeof *pdb);
    for (size_t i = 0; i < n; i++) prev[i] = PG_FREE;
    const unsigned char *old = d + (size_t)!m * ps + PAGEHDR;
    walk_tree(d, len, ps, rd64(old + 72 + 40), prev, pdb, "main", 0);
    for (size_t i = 2; i < n; i++)
        if (kind[i] == PG_FREE && prev[i] != PG_FREE) kind[i] = PG_PREV, memcpy(db[i], pdb[i], sizeof db[i]);
    free(prev);
    free(pdb);
    *out = kind;
    *dbs = db;
    *psize = ps;
    *cur_meta = m;
    return n;
}

/* ---- the cases ---- */

static int add_off(size_t *offs, size_t n, size_t cap, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i] == off) return (int)n;
    if (n < cap) offs[n++] = off;
    return (int)n;
}

/* Deterministic flip offsets in data.mdb: every byte of the newer meta
 * page's header and MDB_meta (every 4th of the older one's) and one of its
 * unused tail; in the other pages their header's page number, flags and
 * bounds; in B-tree pages the first node pointers, the first nodes' sizes,
 * flags, key sizes, keys and values, and samples of the free space and of
 * the nodes; samples of every overflow and free page. */
static size_t index_offsets(const unsigned char *d, size_t len, const int *kind, size_t ps, int cur_meta,
                            size_t *offs, size_t cap)
{
    size_t n = 0;
    uint64_t seed = 12345;
    for (size_t pg = 0; pg < len / ps; pg++) {
        size_t base = pg * ps;
        const unsigned char *p = d + base;
        if (kind[pg] == PG_META) {
            for (size_t i = 0; i < META_END; i += ((int)pg == cur_meta ? 1 : 4)) n = add_off(offs, n, cap, base + i);
            n = add_off(offs, n, cap, base + META_END + tu_rand(&seed) % (ps - META_END));
            continue;
        }
        int first_ovf = kind[pg] == PG_OVERFLOW && (rd16(p + 10) & 4);
        if (kind[pg] == PG_OVERFLOW && !first_ovf) { /* a continuation page: data only */
            for (int i = 0; i < 4; i++) n = add_off(offs, n, cap, base + tu_rand(&seed) % ps);
            continue;
        }
        /* the page header: pgno, pad, flags, lower, upper (every byte of the last three) */
        static const size_t hdr[] = {0, 1, 7, 8, 10, 11, 12, 13, 14, 15};
        for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) n = add_off(offs, n, cap, base + hdr[i]);
        if (kind[pg] == PG_OVERFLOW || kind[pg] == PG_FREE || kind[pg] == PG_PREV) {
            for (int i = 0; i < 4; i++) n = add_off(offs, n, cap, base + PAGEHDR + tu_rand(&seed) % (ps - PAGEHDR));
            continue;
        }
        size_t lower = rd16(p + 12), upper = rd16(p + 14);
        for (size_t i = PAGEHDR; i < lower && i < PAGEHDR + 6; i++) n = add_off(offs, n, cap, base + i);
        /* the first nodes: size (lo, hi), flags, key size, the key's first and last byte, the value's first */
        for (size_t i = 0; i < (lower - PAGEHDR) / 2 && i < 3; i++) {
            size_t node = rd16(p + PAGEHDR + 2 * i);
            if (node + 8 > ps) continue;
            static const size_t nh[] = {0, 2, 4, 6};
            for (size_t b = 0; b < 4; b++) n = add_off(offs, n, cap, base + node + nh[b]);
            size_t ksize = rd16(p + node + 6);
            if (ksize) n = add_off(offs, n, cap, base + node + 8);
            if (ksize > 1) n = add_off(offs, n, cap, base + node + 8 + ksize - 1);
            if (node + 8 + ksize < ps) n = add_off(offs, n, cap, base + node + 8 + ksize);
        }
        if (upper > lower) /* free space inside the page */
            for (int i = 0; i < 2; i++) n = add_off(offs, n, cap, base + lower + tu_rand(&seed) % (upper - lower));
        for (int i = 0; i < 5 && upper < ps; i++)
            n = add_off(offs, n, cap, base + upper + tu_rand(&seed) % (ps - upper));
    }
    return n;
}

static void reset_index(const fixture *fx, const unsigned char *data, size_t len)
{
    unlink(fx->work_lock);
    write_file(fx->work_mdb, data, len);
}

Test(corrupt, index, .timeout = 600)
{
    fixture fx;
    fixture_make(&fx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *mdb = path_in(fx.idx, "data.mdb");
    size_t len;
    unsigned char *pristine = read_file(mdb, &len);
    size_t clen;
    unsigned char *ck = read_file(fx.ckpt, &clen);
    write_file(fx.work_ckpt, ck, clen);
    free(ck);
    reset_index(&fx, pristine, len);
    const probe_kind probes[] = {PROBE_VERIFY, PROBE_READ, PROBE_ENGINE, PROBE_SCORE};
    baseline(&fx, probes, 4);

    int *kind, cur_meta;
    char(*db)[16];
    size_t ps;
    size_t n_pages = page_kinds(pristine, len, &kind, &db, &ps, &cur_meta);
    char (*region)[40] = calloc(n_pages, sizeof *region);
    for (size_t pg = 0; pg < n_pages; pg++)
        snprintf(region[pg], sizeof region[pg], "%s%s%s%s", page_names[kind[pg]], db[pg][0] ? " page (" : " page",
                 db[pg], db[pg][0] ? ")" : "");
    size_t offs[2048];
    size_t n_offs = index_offsets(pristine, len, kind, ps, cur_meta, offs, 2048);
    tally flips = {.what = "index"}, cuts = {.what = "index"};
    for (size_t i = 0; i < n_offs; i++) {
        unlink(fx.work_lock);
        flip_at(fx.work_mdb, offs[i], (int)(offs[i] * 5 % 8));
        char label[64];
        snprintf(label, sizeof label, "flip at %zu (page %zu + %zu)", offs[i], offs[i] / ps, offs[i] % ps);
        run_case(&fx, &flips, probes, 4, fx.work_idx, label, region[offs[i] / ps]);
        flip_at(fx.work_mdb, offs[i], (int)(offs[i] * 5 % 8));
    }
    /* truncations: every page boundary, the middle of each page, a few odd lengths */
    size_t cut_lens[256], n_cuts = 0;
    size_t odd[] = {0, 1, 16, 100, 4095};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) cut_lens[n_cuts++] = odd[i];
    for (size_t pg = 1; pg < n_pages && n_cuts < 250; pg++) {
        cut_lens[n_cuts++] = pg * ps;
        cut_lens[n_cuts++] = pg * ps + ps / 2;
    }
    cut_lens[n_cuts++] = len - 1;
    for (size_t i = 0; i < n_cuts; i++) {
        reset_index(&fx, pristine, cut_lens[i]);
        char label[64];
        snprintf(label, sizeof label, "cut to %zu bytes", cut_lens[i]);
        run_case(&fx, &cuts, probes, 4, fx.work_idx, label, "truncation");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "corrupt: data.mdb of %zu bytes, %zu pages (%s %d), %.1f s\n", len, n_pages, "current meta",
            cur_meta, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    tally_print(&flips, "flips");
    tally_print(&cuts, "truncations");
    int defects = flips.count[OUT_SILENT] + flips.count[OUT_CRASH] + flips.count[OUT_WRONG] +
                  cuts.count[OUT_SILENT] + cuts.count[OUT_CRASH] + cuts.count[OUT_WRONG];
    cr_expect_eq(defects, 0, "%d corrupt index files were not refused as corrupt (listed above)", defects);
    cr_expect(flips.count[OUT_REFUSED] > 0);
    free(kind);
    free(db);
    free(region);
    free(pristine);
    free(mdb);
    fixture_free(&fx);
}

Test(corrupt, checkpoint, .timeout = 600)
{
    fixture fx;
    fixture_make(&fx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *mdb = path_in(fx.idx, "data.mdb");
    size_t len, ilen;
    unsigned char *idata = read_file(mdb, &ilen);
    reset_index(&fx, idata, ilen);
    free(idata);
    unsigned char *pristine = read_file(fx.ckpt, &len);
    write_file(fx.work_ckpt, pristine, len);
    const probe_kind probes[] = {PROBE_ENGINE, PROBE_SCORE};
    baseline(&fx, probes, 2);
    uint64_t hlen = rd64(pristine);
    cr_assert(hlen < len);
    size_t hend = 8 + (size_t)hlen;

    tally flips = {.what = "checkpoint"}, cuts = {.what = "checkpoint"};
    uint64_t seed = 99;
    size_t n_data = 200;
    /* every header byte: `lsim score` and the engine on every 16th, the engine alone on the others (in batches) */
    size_t *batch = malloc(hend * sizeof *batch), nb[2] = {0, 0};
    for (int part = 0; part < 2; part++) { /* the length, then the JSON */
        nb[part] = 0;
        for (size_t off = part ? 8 : 0; off < (part ? hend : 8); off++) {
            if (off % 16) {
                batch[nb[part]++] = off;
                continue;
            }
            flip_at(fx.work_ckpt, off, (int)(off * 5 % 8));
            char label[64];
            snprintf(label, sizeof label, "flip at %zu", off);
            run_case(&fx, &flips, probes, 2, fx.work_ckpt, label, part ? "header (JSON)" : "header length");
            flip_at(fx.work_ckpt, off, (int)(off * 5 % 8));
        }
        run_engine_batches(&fx, &flips, batch, nb[part], pristine, len, part ? "header (JSON)" : "header length");
    }
    free(batch);
    /* a sample of the data: both probes */
    for (size_t i = 0; i < n_data; i++) {
        size_t off = hend + i * (len - hend) / n_data + tu_rand(&seed) % 64;
        if (off >= len) off = len - 1;
        flip_at(fx.work_ckpt, off, (int)(off * 5 % 8));
        char label[64];
        snprintf(label, sizeof label, "flip at %zu", off);
        run_case(&fx, &flips, probes, 2, fx.work_ckpt, label, "data");
        flip_at(fx.work_ckpt, off, (int)(off * 5 % 8));
    }
    size_t cut_lens[128], n_cuts = 0;
    for (size_t l = 0; l <= 9; l++) cut_lens[n_cuts++] = l;
    for (size_t k = 1; k < 20; k++) cut_lens[n_cuts++] = 8 + hlen * k / 20;
    cut_lens[n_cuts++] = hend - 1;
    cut_lens[n_cuts++] = hend;
    for (size_t k = 1; k < 30; k++) cut_lens[n_cuts++] = hend + (len - hend) * k / 30;
    cut_lens[n_cuts++] = len - 4;
    cut_lens[n_cuts++] = len - 1;
    for (size_t i = 0; i < n_cuts; i++) {
        write_file(fx.work_ckpt, pristine, cut_lens[i]);
        char label[64];
        snprintf(label, sizeof label, "cut to %zu bytes", cut_lens[i]);
        run_case(&fx, &cuts, probes, 2, fx.work_ckpt, label, "truncation");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "corrupt: checkpoint of %zu bytes, header %zu bytes, %.1f s\n", len, hend,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    tally_print(&flips, "flips");
    tally_print(&cuts, "truncations");
    int defects = flips.count[OUT_SILENT] + flips.count[OUT_CRASH] + flips.count[OUT_WRONG] +
                  cuts.count[OUT_SILENT] + cuts.count[OUT_CRASH] + cuts.count[OUT_WRONG];
    cr_expect_eq(defects, 0, "%d corrupt checkpoints were not refused as corrupt (listed above)", defects);
    free(pristine);
    free(mdb);
    fixture_free(&fx);
}
