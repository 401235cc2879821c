/*
 * test_header_only.c: the public header compiles on its own (it is the only
 * include here) and its error names are distinct and non-empty.
 */
#include "lsim.h"

#include <criterion/criterion.h>
#include <string.h>

Test(header, compiles_alone_and_names_every_error)
{
    const int codes[] = {LSIM_OK, LSIM_E_INVAL, LSIM_E_NOMEM, LSIM_E_IO, LSIM_E_STORAGE, LSIM_E_CORRUPT,
                         LSIM_E_NOTFOUND, LSIM_E_FORMAT, LSIM_E_VERSION, LSIM_E_INCOMPLETE, LSIM_E_FULL,
                         LSIM_E_LIMIT, LSIM_E_SEARCH};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        cr_assert(lsim_strerror(codes[i]) && *lsim_strerror(codes[i]));
        for (size_t j = 0; j < i; j++) cr_assert_str_neq(lsim_strerror(codes[i]), lsim_strerror(codes[j]));
    }
    cr_assert_str_eq(lsim_strerror(12345), "unknown error");
    cr_assert_str_eq(lsim_version(), "0.1.0");
}

/* Every function the header declares links, with the declared type. */
Test(header, every_function_links)
{
    void (*fns[])(void) = {
        (void (*)(void))lsim_strerror,       (void (*)(void))lsim_version,          (void (*)(void))lsim_index_open,
        (void (*)(void))lsim_index_close,    (void (*)(void))lsim_index_stats_get,  (void (*)(void))lsim_index_reader_new,
        (void (*)(void))lsim_index_reader_free, (void (*)(void))lsim_index_reader_errmsg,
        (void (*)(void))lsim_index_hard_search, (void (*)(void))lsim_settings_default, (void (*)(void))lsim_engine_open,
        (void (*)(void))lsim_engine_close,   (void (*)(void))lsim_ctx_new,          (void (*)(void))lsim_ctx_free,
        (void (*)(void))lsim_ctx_errmsg,     (void (*)(void))lsim_score,            (void (*)(void))lsim_explain,
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) cr_assert(fns[i] != NULL);
    lsim_settings s;
    lsim_settings_default(&s);
    cr_assert_eq(s.max_candidates, 1000);
    cr_assert_eq(s.soft_search, LSIM_SOFT_EXACT);
    cr_assert_eq(s.short_len, 0);
    cr_assert_eq(s.long_max, 0);
}
