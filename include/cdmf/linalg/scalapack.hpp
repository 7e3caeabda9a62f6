#pragma once
/// Declarations of the BLACS, PBLAS, ScaLAPACK, BLAS and LAPACK routines cdmf calls.
/// Debian ships no C headers for them (PLATFORM.md). Fortran routines with CHARACTER
/// arguments take hidden size_t lengths at the end; PBLAS (pd* level 1-3) are C and take none.
#include <mpi.h>

#include <cstddef>

extern "C" {
// BLACS (C interface)
void Cblacs_pinfo(int* rank, int* nprocs);
void Cblacs_get(int context, int what, int* value);
void Cblacs_gridinit(int* context, const char* order, int rows, int cols);
void Cblacs_gridinfo(int context, int* rows, int* cols, int* row, int* col);
void Cblacs_gridexit(int context);
void Cblacs_exit(int keep_mpi);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);

// ScaLAPACK tools
int numroc_(const int* n, const int* nb, const int* iproc, const int* isrcproc, const int* nprocs);
void descinit_(int* desc, const int* m, const int* n, const int* mb, const int* nb, const int* irsrc,
               const int* icsrc, const int* context, const int* lld, int* info);

// PBLAS
void pdgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
             const double* alpha, const double* a, const int* ia, const int* ja, const int* desca,
             const double* b, const int* ib, const int* jb, const int* descb, const double* beta,
             double* c, const int* ic, const int* jc, const int* descc);
void pdtran_(const int* m, const int* n, const double* alpha, const double* a, const int* ia,
             const int* ja, const int* desca, const double* beta, double* c, const int* ic,
             const int* jc, const int* descc);
void pdsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
             const double* a, const int* ia, const int* ja, const int* desca, const double* beta,
             double* c, const int* ic, const int* jc, const int* descc);
void pdgeadd_(const char* trans, const int* m, const int* n, const double* alpha, const double* a,
              const int* ia, const int* ja, const int* desca, const double* beta, double* c,
              const int* ic, const int* jc, const int* descc);

// PBLAS's process-wide BLACS topologies: op 'B' (broadcast) or 'C' (combine), scope 'R', 'C'
// or 'A', top '!' to read the current one (returns a pointer to it) or the one to set.
char* PB_Ctop(int* context, const char* op, const char* scope, const char* top);

// ScaLAPACK
void pdgeqrf_(const int* m, const int* n, double* a, const int* ia, const int* ja, const int* desca,
              double* tau, double* work, const int* lwork, int* info);
void pdorgqr_(const int* m, const int* n, const int* k, double* a, const int* ia, const int* ja,
              const int* desca, const double* tau, double* work, const int* lwork, int* info);
void pdgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a,
              const int* ia, const int* ja, const int* desca, double* s, double* u, const int* iu,
              const int* ju, const int* descu, double* vt, const int* ivt, const int* jvt,
              const int* descvt, double* work, const int* lwork, int* info, size_t jobu_len,
              size_t jobvt_len);
void pdsyntrd_(const char* uplo, const int* n, double* a, const int* ia, const int* ja,
               const int* desca, double* d, double* e, double* tau, double* work, const int* lwork,
               int* info, size_t uplo_len);
void pdormtr_(const char* side, const char* uplo, const char* trans, const int* m, const int* n,
              const double* a, const int* ia, const int* ja, const int* desca, const double* tau,
              double* c, const int* ic, const int* jc, const int* descc, double* work,
              const int* lwork, int* info, size_t side_len, size_t uplo_len, size_t trans_len);
void pdgemr2d_(const int* m, const int* n, const double* a, const int* ia, const int* ja,
               const int* desca, double* b, const int* ib, const int* jb, const int* descb,
               const int* context);

// BLAS / LAPACK (serial, on local blocks)
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc, size_t transa_len, size_t transb_len);
void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a,
             const int* lda, double* s, double* u, const int* ldu, double* vt, const int* ldvt,
             double* work, const int* lwork, int* info, size_t jobu_len, size_t jobvt_len);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda,
             const double* tau, double* work, const int* lwork, int* info);
void dstemr_(const char* jobz, const char* range, const int* n, double* d, double* e,
             const double* vl, const double* vu, const int* il, const int* iu, int* m, double* w,
             double* z, const int* ldz, const int* nzc, int* isuppz, int* tryrac, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t jobz_len,
             size_t range_len);
char* openblas_get_corename(void);
int openblas_get_num_threads(void);
}
