/*
 * crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every event block (storage/block_codec.h).
 *
 * Two implementations of one function:
 *   - crc32c_portable: table-driven slice-by-8, plain C, any CPU, any byte
 *     order (words are assembled from bytes). The reference.
 *   - the SSE4.2 path (x86-64 only): the crc32 instruction, 8 bytes a step,
 *     compiled with a target attribute so the rest of the build needs no
 *     -msse4.2, and chosen at run time with __builtin_cpu_supports.
 * crc32c() picks the fast one once (pthread_once) and calls it; the tests
 * compare both on random buffers, lengths and alignments.
 *
 * It is not a general hashing library: no other polynomials, no combine.
 *
 * Convention (the usual one, as in iSCSI and ext4 without their seeds): the
 * register is inverted on entry and on exit, so
 *   crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a || b, na + nb)
 * and crc32c(0, "123456789", 9) == 0xE3069283.
 */
#include "storage/block_codec.h"
#include "storage/byte_order.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

/* table[k][b]: the CRC register contribution of byte b followed by k zero
 * bytes. Written once under crc_once, read-only afterwards. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_have_hw;

static void crc_tables_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t r = b;
        for (int k = 0; k < 8; k++) r = (r >> 1) ^ (CRC32C_POLY & (0u - (r & 1u)));
        crc_table[0][b] = r;
    }
    for (uint32_t b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++) {
            uint32_t prev = crc_table[k - 1][b];
            crc_table[k][b] = (prev >> 8) ^ crc_table[0][prev & 0xffu];
        }
    }
}

static uint32_t crc_portable_run(uint32_t crc, const uint8_t *p, size_t len)
{
    uint32_t r = ~crc;
    while (len >= 8) {
        uint32_t lo = r ^ le32_get(p);
        uint32_t hi = le32_get(p + 4);
        r = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^
            crc_table[5][(lo >> 16) & 0xffu] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xffu] ^ crc_table[2][(hi >> 8) & 0xffu] ^
            crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) r = (r >> 8) ^ crc_table[0][(r ^ *p++) & 0xffu];
    return ~r;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_X86 1
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_sse42_run(uint32_t crc, const uint8_t *p,
                                                                size_t len)
{
    uint32_t r = ~crc;
    /* Byte steps up to 8-byte alignment, then 8-byte steps (memcpy loads:
     * no alignment or aliasing assumptions), then the tail. */
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        r = _mm_crc32_u8(r, *p++);
        len--;
    }
    uint64_t r64 = r;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        r64 = _mm_crc32_u64(r64, w);
        p += 8;
        len -= 8;
    }
    r = (uint32_t)r64;
    while (len--) r = _mm_crc32_u8(r, *p++);
    return ~r;
}
#endif

static void crc_init(void)
{
    crc_tables_init();
#ifdef CRC32C_HAVE_X86
    __builtin_cpu_init();
    crc_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    return crc_portable_run(crc, (const uint8_t *)buf, len);
}

int crc32c_hw_available(void)
{
    pthread_once(&crc_once, crc_init);
    return crc_have_hw;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
#ifdef CRC32C_HAVE_X86
    if (crc_have_hw) return crc_sse42_run(crc, (const uint8_t *)buf, len);
#endif
    return crc_portable_run(crc, (const uint8_t *)buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_hw(crc, buf, len);
}
