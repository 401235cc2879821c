/*
 * fuzz_block_codec.c: libFuzzer target for the event block decoder
 * (storage/block_codec.h). The CRC would stop nearly every mutated block at
 * the door, so the first input byte picks a mode: 0 decodes the rest as it
 * is; 1 rewrites its last 4 bytes to the right CRC-32C and decodes it with a
 * plain codec; 2 does the same, seeded with a dictionary, for a codec made
 * with that dictionary. A decoded block must agree with its header.
 */
#include "fuzz_util.h"
#include "storage/block_codec.h"

static const char dict_bytes[] = "lsim fuzz dictionary: a few bytes of raw content for zstd's dictionary mode, "
                                 "repeated content content content 0123456789 0123456789";

static block_codec *g_plain, *g_dict;
static ubt_event g_out[BLOCK_MAX_EVENTS];

static void setup(void)
{
    if (g_plain) return;
    if (block_codec_new(&g_plain, NULL, 0, 3) || block_codec_new(&g_dict, dict_bytes, sizeof dict_bytes, 3))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1) return 0;
    unsigned mode = data[0] % 3;
    size_t len = size - 1;
    uint8_t *b = malloc(len ? len : 1); /* its own allocation, so ASan sees overreads */
    if (!b) abort();
    memcpy(b, data + 1, len);
    block_codec *c = mode == 2 ? g_dict : g_plain;
    if (mode && len >= 4) {
        uint32_t seed = mode == 2 ? crc32c(0, dict_bytes, sizeof dict_bytes) : 0;
        uint32_t crc = crc32c(seed, b, len - 4);
        for (int i = 0; i < 4; i++) b[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }

    block_header h;
    int hrc = block_read_header(b, len, &h);
    fuzz_check_rc(hrc, "block_read_header");
    size_t n = 0;
    int rc = block_decode(c, g_out, BLOCK_MAX_EVENTS, &n, b, len, 7u);
    fuzz_check_rc(rc, "block_decode");
    if (rc == 0) {
        if (hrc != 0 || n != h.n || n < 1 || n > BLOCK_MAX_EVENTS) abort();
        if (g_out[0].ts != h.first_ts || g_out[n - 1].ts != h.last_ts) abort();
        for (size_t i = 1; i < n; i++)
            if (g_out[i].ts < g_out[i - 1].ts) abort();
        if (!h.with_cat)
            for (size_t i = 0; i < n; i++)
                if (g_out[i].cat != 7u) abort();
        /* What decodes re-encodes and decodes to the same events. */
        size_t cap = block_encoded_bound(n), len2 = 0, n2 = 0;
        uint8_t *b2 = malloc(cap);
        ubt_event *again = malloc(n * sizeof *again);
        if (!b2 || !again) abort();
        if (block_encode(g_plain, b2, cap, &len2, g_out, n, h.with_cat)) abort();
        if (block_decode(g_plain, again, n, &n2, b2, len2, 7u) || n2 != n) abort();
        for (size_t i = 0; i < n; i++)
            if (again[i].ts != g_out[i].ts || again[i].item != g_out[i].item || again[i].cat != g_out[i].cat ||
                again[i].tie != g_out[i].tie || again[i].type != g_out[i].type)
                abort();
        free(b2);
        free(again);
    } else if (rc != LSIM_E_CORRUPT) {
        abort();
    }
    free(b);
    return 0;
}
