"""How the CPU fast path's Numba kernels are compiled (kernels.py, updates.py), and the prefetch hint
they share."""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# error_model="numpy": no ZeroDivisionError checks, which would stop LLVM from vectorizing the loops.
# nogil: the web server's threads keep running while a kernel works.
_jit = njit(cache=True, fastmath=True, error_model="numpy", nogil=True)


@intrinsic
def _prefetch(typingctx, arr_ty, off_ty):
    """Hint the CPU to bring the cache line at byte `off` of array `arr`'s data into cache (LLVM's
    prefetch; it changes no value). Used on the weight and optimizer rows a kernel reads next, which sit
    at random addresses the hardware prefetcher cannot guess."""
    sig = types.void(arr_ty, off_ty)

    def codegen(context, builder, signature, args):
        arr, off = args
        ary = context.make_array(signature.args[0])(context, builder, arr)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        ptr = builder.gep(builder.bitcast(ary.data, i8p), [off])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])  # for writing, keep in all levels, data cache
        return context.get_dummy_value()

    return sig, codegen


@_jit
def _prefetch_span(a, nbytes):
    """Prefetch the first nbytes of array a's data (a contiguous row)."""
    for off in range(0, nbytes, 64):
        _prefetch(a, off)
    _prefetch(a, nbytes - 1)
