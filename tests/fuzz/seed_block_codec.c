/*
 * seed_block_codec.c: writes the seed corpus of fuzz_block_codec (not a
 * fuzz target): a few encoded blocks, each prefixed with the target's mode
 * byte. Build it as tests/run_fuzzers.sh builds the targets, without
 * -fsanitize=fuzzer; run it with the corpus folder as its argument.
 */
#include "storage/block_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char dict_bytes[] = "lsim fuzz dictionary: a few bytes of raw content for zstd's dictionary mode, "
                                 "repeated content content content 0123456789 0123456789";

static void put(const char *dir, const char *name, uint8_t mode, const uint8_t *b, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 || fwrite(b, 1, len, f) != len || fclose(f)) exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    block_codec *plain, *dict;
    if (block_codec_new(&plain, NULL, 0, 3) || block_codec_new(&dict, dict_bytes, sizeof dict_bytes, 3)) return 1;
    static ubt_event ev[200];
    static uint8_t buf[1 << 16];
    uint32_t x = 12345;
    int64_t ts = 1500000000;
    for (size_t i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        int same = (x >> 20) % 5 == 0;
        ts += same ? 0 : (int64_t)((x >> 8) % 3600);
        ev[i] = (ubt_event){.ts = ts, .item = (x >> 4) % 37, .cat = (x >> 12) % 5,
                            .tie = same && i ? ev[i - 1].tie + 1 : 0, .type = (uint8_t)((x >> 16) % 4)};
    }
    const size_t sizes[] = {1, 3, 40, 200};
    for (size_t k = 0; k < 4; k++)
        for (int wc = 0; wc < 2; wc++) {
            size_t len;
            char name[64];
            if (block_encode(plain, buf, sizeof buf, &len, ev, sizes[k], wc)) return 1;
            snprintf(name, sizeof name, "plain_n%zu_cat%d", sizes[k], wc);
            put(argv[1], name, 1, buf, len);
            if (k == 1) {
                snprintf(name, sizeof name, "asis_n%zu_cat%d", sizes[k], wc);
                put(argv[1], name, 0, buf, len);
            }
            if (block_encode(dict, buf, sizeof buf, &len, ev, sizes[k], wc)) return 1;
            snprintf(name, sizeof name, "dict_n%zu_cat%d", sizes[k], wc);
            put(argv[1], name, 2, buf, len);
        }
    /* Many equal events: the case zstd compresses. */
    for (size_t i = 0; i < 200; i++) ev[i] = (ubt_event){.ts = 1500000000 + (int64_t)i, .item = 1, .cat = 2, .type = 0};
    size_t len;
    if (block_encode(plain, buf, sizeof buf, &len, ev, 200, 1)) return 1;
    put(argv[1], "plain_repetitive", 1, buf, len);
    if (block_encode(dict, buf, sizeof buf, &len, ev, 200, 1)) return 1;
    put(argv[1], "dict_repetitive", 2, buf, len);
    block_codec_free(plain);
    block_codec_free(dict);
    return 0;
}
