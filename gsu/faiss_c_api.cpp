/*
 * faiss_c_api.cpp: the part of FAISS's C API (the faiss/c_api headers) that lsim
 * calls, implemented on the C++ library (Debian's libfaiss-dev ships the C
 * API's headers and libfaiss.a, but not the C API's compiled code).
 *
 * Written here from the headers' contracts: every function returns 0 or a
 * negative FaissErrorCode and keeps the exception for faiss_get_last_error
 * (per thread), as FAISS's own C API does; nothing is printed. Only what
 * gsu/soft_faiss.c uses is here.
 */
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>

#include <exception>
#include <omp.h>
#include <new>
#include <string>

extern "C" {
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
}

namespace {
thread_local std::string last_error;

int fail(const char *what, int code)
{
    try {
        last_error = what;
    } catch (...) {
    }
    return code;
}
} // namespace

#define GUARD(body)                                                                        \
    try {                                                                                  \
        body;                                                                              \
        return 0;                                                                          \
    } catch (const faiss::FaissException &e) {                                             \
        return fail(e.what(), FAISS_EXCEPT);                                               \
    } catch (const std::exception &e) {                                                    \
        return fail(e.what(), STD_EXCEPT);                                                 \
    } catch (...) {                                                                        \
        return fail("unknown exception", UNKNOWN_EXCEPT);                                  \
    }

static faiss::Index *cxx(FaissIndex *p)
{
    return reinterpret_cast<faiss::Index *>(p);
}

static const faiss::Index *cxx(const FaissIndex *p)
{
    return reinterpret_cast<const faiss::Index *>(p);
}

extern "C" {

const char *faiss_get_last_error()
{
    return last_error.empty() ? nullptr : last_error.c_str();
}

int faiss_IndexFlatIP_new_with(FaissIndexFlatIP **p_index, idx_t d)
{
    GUARD(*p_index = reinterpret_cast<FaissIndexFlatIP *>(new faiss::IndexFlatIP(d)))
}

void faiss_Index_free(FaissIndex *obj)
{
    delete cxx(obj);
}

idx_t faiss_Index_ntotal(const FaissIndex *index)
{
    return cxx(index)->ntotal;
}

int faiss_Index_d(const FaissIndex *index)
{
    return cxx(index)->d;
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x)
{
    GUARD(cxx(index)->add(n, x))
}

int faiss_Index_reset(FaissIndex *index)
{
    GUARD(cxx(index)->reset())
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k, float *distances, idx_t *labels)
{
    GUARD(cxx(index)->search(n, x, k, distances, labels))
}

/* Not FAISS's: the calling thread's OpenMP team size for the FAISS calls it
 * makes next (a request engine runs one search per thread; FAISS would
 * otherwise start a team as wide as the machine from every thread). */
void lsim_faiss_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : 1);
}

} // extern "C"
