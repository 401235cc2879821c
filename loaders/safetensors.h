/*
 * safetensors.h: reading and writing safetensors files, the checkpoint
 * format of lsim (private; docs/CHECKPOINT_FORMAT.md).
 *
 * A file: an 8-byte little-endian header length N; N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
 *    "__metadata__": {"KEY": "VALUE", ...}}
 * then the data section; offsets are relative to its start. PyTorch users
 * write the same file (tests/golden/safetensors_io.py shows how), so a model
 * trained elsewhere can be served.
 *
 * The writer puts a CRC-32C of the whole file first in __metadata__
 * ("lsim.crc32c"); the reader checks it before it parses anything, so a
 * flipped byte or a truncation of a file lsim wrote is LSIM_E_CORRUPT
 * ("PATH: corrupt checkpoint: ..."). Files without it (PyTorch's) are read
 * as before. The entry is not returned as metadata.
 *
 * The reader validates every field before anything is used: header length
 * within the file, JSON well formed (strings, numbers, nesting), known
 * dtypes, shape products that do not overflow and equal END - BEGIN over the
 * dtype size, offsets inside the data section, tensors neither overlapping
 * nor leaving holes, the data section ending exactly at the end of the file,
 * unique names, metadata values strings. A file whose size disagrees with
 * its header is LSIM_E_CORRUPT; any other violation is LSIM_E_FORMAT (or
 * LSIM_E_IO for an unreadable file), with a message naming the file, the
 * tensor or key, and what is wrong. Never a crash on any input.
 */
#ifndef LSIM_SAFETENSORS_H
#define LSIM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20)

typedef enum st_dtype { ST_F32, ST_F64, ST_F16, ST_I64, ST_I32, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct st_tensor {
    const char *name;      /* NUL-terminated */
    st_dtype dtype;
    size_t ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t numel;        /* product of shape (1 for a scalar, ndim 0) */
    const void *data;      /* aligned to the dtype's size (the reader copies when the file's is not) */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Opens and validates path. Pointers into it live until st_close. */
int st_open(st_file **out, const char *path, char *err, size_t errlen);
void st_close(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);   /* in header order */
const st_tensor *st_find(const st_file *f, const char *name);

/* The tensor `name`, checked to have `dtype` and exactly the shape
 * shape[0..ndim). Returns 0 and *data, or LSIM_E_NOTFOUND ("FILE: no tensor
 * NAME") / LSIM_E_FORMAT ("FILE: tensor NAME: expected F32 [3, 4], found F32
 * [4, 3]"). */
int st_get(const st_file *f, const char *name, st_dtype dtype, size_t ndim, const uint64_t *shape,
           const void **data, char *err, size_t errlen);

/* A __metadata__ value, or NULL. */
const char *st_meta(const st_file *f, const char *key);
/* The value of `key` as a decimal integer in [lo, hi]: 1 and *out when it is
 * there, 0 when it is absent, LSIM_E_FORMAT when it is not such an integer
 * ("PATH: metadata KEY: want an integer in [LO, HI], found 'V'"). */
int st_meta_i64(const st_file *f, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                char *err, size_t errlen);
size_t st_meta_count(const st_file *f);
void st_meta_at(const st_file *f, size_t i, const char **key, const char **value);

const char *st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);

/* ---- writing ---- */
typedef struct st_writer st_writer;

int st_writer_new(st_writer **out);
void st_writer_free(st_writer *w);
/* Adds a tensor; data is copied. Names must be unique (LSIM_E_INVAL). */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, size_t ndim, const uint64_t *shape,
                  const void *data);
int st_writer_meta(st_writer *w, const char *key, const char *value);
/* Writes the file atomically (a temporary file renamed over path, fsynced):
 * a reader never sees half a checkpoint. */
int st_writer_write(st_writer *w, const char *path, char *err, size_t errlen);

#endif
