/*
 * fuzz_safetensors.c: libFuzzer target for the checkpoint loader
 * (loaders/safetensors.h): the input opened as a safetensors file, every
 * tensor and metadata entry read back and its bytes touched.
 */
#include "fuzz_util.h"
#include "loaders/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_temp_file(data, size);
    if (!path) return 0;
    st_file *f = NULL;
    char err[512];
    int rc = st_open(&f, path, err, sizeof err);
    fuzz_check_rc(rc, "st_open");
    if (rc == 0) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < st_count(f); i++) {
            const st_tensor *t = st_at(f, i);
            if (!t || st_find(f, t->name) != t) abort();
            if (t->nbytes != t->numel * st_dtype_size(t->dtype)) abort();
            const uint8_t *b = t->data;
            for (size_t k = 0; k < t->nbytes; k++) sink ^= b[k];
            const void *d = NULL;
            rc = st_get(f, t->name, t->dtype, t->ndim, t->shape, &d, err, sizeof err);
            if (rc != 0 || d != t->data) abort();
        }
        for (size_t i = 0; i < st_meta_count(f); i++) {
            const char *k, *v;
            st_meta_at(f, i, &k, &v);
            if (!k || !v || st_meta(f, k) == NULL) abort();
            int64_t x;
            fuzz_check_rc(st_meta_i64(f, path, k, -1000000, 1000000, &x, err, sizeof err) < 0 ? -1 : 0,
                          "st_meta_i64");
        }
        (void)sink;
    } else if (f) {
        abort();
    }
    st_close(f);
    unlink(path);
    return 0;
}
