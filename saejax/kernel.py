"""The analytic evaluation of G sigmoid networks that share their data, one GPU kernel per member.

On a GPU the members' (M, N) temporaries, z3, a3 and delta3, bound the evaluation: written and
read again through memory a dozen times, 2.6 GB each for 1,024 members of the UFLDL exercise
(docs/gpu.md). Here each member is one program of a Pallas kernel (the Triton backend) that walks
its examples in blocks of ``block`` rows and keeps every temporary of a block inside the program
(in registers, sized for them; what does not fit spills to the program's local memory) rather
than writing them as arrays: what goes through memory as arrays is x (shared by the members, so
read from cache) and the member's weights. Its speed on a GPU is not yet measured.

Two kernels, because the sparsity term needs rho_hat, a mean over every example, before any
example's delta2 (as ``grads.terms_and_grad_blocked``):

    sums:   rho_hat = (1/m) sum_k a2_k and the count of a2 > 0, block by block
    grads:  per block  a2 = s(x W1^T + b1)   a3 = f(a2 W2^T + b2)   err = a3 - x
                       delta3 = err f'(z3) / m
                       delta2 = (delta3 W2 + beta P'(rho_hat) / m) a2 (1 - a2)
            summed     dW1 = delta2^T x   db1 = sum delta2   dW2 = delta3^T a2   db2 = sum delta3
                       ||err||^2

The equations are ``grads.terms_and_grad``'s; only the order of the sums differs, so the result
equals ``jax.vmap`` of it to rounding. Shapes are padded for the kernel: N and H to powers of
two (at least 16, as the Triton dot needs), M to a multiple of ``block``; padded examples and
visible units are masked out of every sum, and padded hidden units (weights 0) change nothing
that is kept. The dots run at JAX's matmul precision (``jax_default_matmul_precision``: at
its default, float32 dots on a GPU are TF32, as XLA's). On the CPU the kernels run in Pallas's
interpreter (correct, and slow: for tests).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from saejax.folded import add_decay, member_terms
from saejax.model import check_decoder
from saejax.penalties import penalty_derivative

# One member's weights and their gradients (4 N H values, N and H padded) are held by the
# program's threads (NUM_WARPS x 32 of them, at most 255 registers each) with a block's tiles:
# N H is at most 4,096 float32 values (2,048 float64), and N at most 128 (a block's x, z3, a3
# and delta3 are each BLOCK x N). The exercise's 64-25 pads to 64 x 32 = 2,048. Wider networks
# have products wide enough for XLA (member_eval "whole").
MAX_PADDED_WEIGHT_BYTES = 4096 * 4
MAX_PADDED_INPUTS = 128
# The launch: blocks of BLOCK examples, NUM_WARPS warps a program. As XLA compiles the kernel
# for an H100 (experiments/bench/kernel_registers.py, which needs no GPU; ptxas 12.9), 16 rows
# and 8 warps keep every float32 size within both limits in registers: 122 a thread at 64-25,
# at most 227 at the limits, nothing spilled. 64 rows and 4 warps spilled 800 bytes a thread at
# 64-25; 256 inputs spilled at every launch tried. float64 spills at every launch tried.
# Speed on a GPU: not yet measured (gpu_check's kernel check tunes both).
BLOCK = 16
NUM_WARPS = 8
# Triton addresses x with 32-bit offsets: the padded (M, N) must stay below 2^31 values.
MAX_OFFSET = 2**31


def padded(size: int) -> int:
    """The next power of two, at least 16 (the smallest dimension of a Triton dot)."""
    return max(16, 1 << (size - 1).bit_length())


def fits(n: int, h: int, dtype="float32") -> bool:
    """Whether the kernel takes an n-h network: its padded weights within
    ``MAX_PADDED_WEIGHT_BYTES`` and its padded inputs within ``MAX_PADDED_INPUTS`` (in float32
    these stay in registers; float64 spills to local memory at every launch measured)."""
    return (padded(n) * padded(h) * jnp.dtype(dtype).itemsize <= MAX_PADDED_WEIGHT_BYTES
            and padded(n) <= MAX_PADDED_INPUTS)


def check_size(n: int, h: int, dtype="float32", m: int = 0, block: int | None = None) -> None:
    """Refuses networks whose padded weights would not stay in registers, and data too large
    for 32-bit offsets, saying what to do."""
    if not fits(n, h, dtype):
        limit = MAX_PADDED_WEIGHT_BYTES // jnp.dtype(dtype).itemsize
        raise ValueError(
            f"member_eval 'kernel' keeps each member's weights in registers: {n}-{h} pads to "
            f"{padded(n)} x {padded(h)}, more than {limit} {jnp.dtype(dtype).name} values or "
            f"more than {MAX_PADDED_INPUTS} inputs. Use member_eval 'whole' (its products are "
            f"wide enough at this size).")
    if (m + (BLOCK if block is None else block)) * padded(n) >= MAX_OFFSET:
        raise ValueError(
            f"member_eval 'kernel' addresses the data with 32-bit offsets: {m} examples of "
            f"{padded(n)} (padded) values are too many. Use member_eval 'whole'.")


def check_block(block: int) -> None:
    """A block of examples is a power of two, at least 16 (Triton's tiles and dots)."""
    if block < 16 or block & (block - 1):
        raise ValueError(f"block must be a power of two, at least 16; got {block}.")


def _sigmoid(z):
    return 1.0 / (1.0 + jnp.exp(-z))


def _block(x_ref, W1, b1, i, block: int, m: int):
    """Block i's examples, their a2 (zero on padded rows) and the rows' mask."""
    start = pl.multiple_of(i * block, block)
    xb = x_ref[pl.ds(start, block), :]
    rows = start + jax.lax.broadcasted_iota(jnp.int32, (block, 1), 0)
    keep = (rows < m).astype(xb.dtype)
    return xb, _sigmoid(plt.dot(xb, W1, trans_b=True) + b1[None, :]) * keep, keep


def _sums_kernel(x_ref, W1_ref, b1_ref, rho_ref, l0_ref, *, m: int, block: int, blocks: int):
    W1, b1 = W1_ref[...], b1_ref[...]

    def body(i, acc):
        a2 = _block(x_ref, W1, b1, i, block, m)[1]
        return acc[0] + jnp.sum(a2, axis=0), acc[1] + jnp.sum((a2 > 0).astype(a2.dtype), axis=0)

    zero = jnp.zeros(b1.shape, b1.dtype)
    total, count = jax.lax.fori_loop(0, blocks, body, (zero, zero))
    rho_ref[...] = total / m
    l0_ref[...] = count


def _grads_kernel(x_ref, W1_ref, b1_ref, W2_ref, b2_ref, sparse_ref, cols_ref,
                  gW1_ref, gb1_ref, gW2_ref, gb2_ref, sq_ref, *, m: int, block: int,
                  blocks: int, decoder: str):
    W1, b1, W2, b2 = W1_ref[...], b1_ref[...], W2_ref[...], b2_ref[...]
    sparse, cols = sparse_ref[...], cols_ref[...]

    def body(i, acc):
        gW1, gb1, gW2, gb2, sq = acc
        xb, a2, keep = _block(x_ref, W1, b1, i, block, m)
        z3 = plt.dot(a2, W2, trans_b=True) + b2[None, :]
        a3 = z3 if decoder == "linear" else _sigmoid(z3)
        err = (a3 - xb) * keep * cols[None, :]
        delta3 = err / m if decoder == "linear" else err * a3 * (1.0 - a3) / m
        delta2 = (plt.dot(delta3, W2) + sparse[None, :]) * a2 * (1.0 - a2)
        return (gW1 + plt.dot(delta2, xb, trans_a=True), gb1 + jnp.sum(delta2, axis=0),
                gW2 + plt.dot(delta3, a2, trans_a=True), gb2 + jnp.sum(delta3, axis=0),
                sq + jnp.sum(err * err, axis=0))

    acc = jax.lax.fori_loop(0, blocks, body, (jnp.zeros_like(W1), jnp.zeros_like(b1),
                                              jnp.zeros_like(W2), jnp.zeros_like(b2),
                                              jnp.zeros_like(b2)))
    for ref, value in zip((gW1_ref, gb1_ref, gW2_ref, gb2_ref, sq_ref), acc, strict=True):
        ref[...] = value


def _member(*shape):
    """A BlockSpec of one member's slice of a (G, *shape) array."""
    return pl.BlockSpec((None, *shape), lambda g: (g, *(0 for _ in shape)))


def _shared(*shape):
    """A BlockSpec of an array every member reads whole."""
    return pl.BlockSpec(shape, lambda g: tuple(0 for _ in shape))


def _call(kernel, G, ins, in_specs, outs, interpret: bool, num_warps: int):
    return pl.pallas_call(
        kernel, grid=(G,), in_specs=in_specs,
        out_specs=[_member(*o.shape[1:]) for o in outs], out_shape=outs,
        compiler_params=plt.CompilerParams(num_warps=num_warps), interpret=interpret)(*ins)


def kernel_terms_and_grad(params, x_MxN, hyper, penalty: str = "kl", decoder: str = "sigmoid",
                          tied: bool = False, interpret: bool | None = None,
                          block: int | None = None, num_warps: int | None = None):
    """``folded.folded_terms_and_grad`` computed by the two kernels: params and hyper stacked on
    axis 0, x (M, N) shared. ``interpret`` (default: anywhere but a GPU) runs Pallas's
    interpreter; ``block`` (examples a step, a power of two) and ``num_warps`` (Triton's
    threads per program, in warps of 32) tune the kernels (default: ``BLOCK`` and ``NUM_WARPS``,
    read at each call)."""
    check_decoder(decoder)
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    W1 = params["W1"]
    G, H, N = W1.shape
    block = BLOCK if block is None else block
    num_warps = NUM_WARPS if num_warps is None else num_warps
    check_block(block)
    check_size(N, H, W1.dtype, x_MxN.shape[0], block)
    m, dtype = x_MxN.shape[0], W1.dtype
    Np, Hp = padded(N), padded(H)
    blocks = -(-m // block)
    x = jnp.pad(x_MxN.astype(dtype), ((0, blocks * block - m), (0, Np - N)))
    W2 = jnp.swapaxes(W1, 1, 2) if tied else params["W2"]
    W1p = jnp.pad(W1, ((0, 0), (0, Hp - H), (0, Np - N)))
    W2p = jnp.pad(W2, ((0, 0), (0, Np - N), (0, Hp - H)))
    b1p = jnp.pad(params["b1"], ((0, 0), (0, Hp - H)))
    b2p = jnp.pad(params["b2"], ((0, 0), (0, Np - N)))
    sizes = {"m": m, "block": block, "blocks": blocks}
    rho_p, l0_p = _call(partial(_sums_kernel, **sizes), G, (x, W1p, b1p),
                        [_shared(*x.shape), _member(Hp, Np), _member(Hp)],
                        [jax.ShapeDtypeStruct((G, Hp), dtype)] * 2, interpret, num_warps)
    rho_hat = rho_p[:, :H]
    sparse = (hyper.beta[:, None] * penalty_derivative(penalty, hyper.rho[:, None], rho_hat)
              / m).astype(dtype)
    cols = (jnp.arange(Np) < N).astype(dtype)
    out = _call(partial(_grads_kernel, decoder=decoder, **sizes), G,
                (x, W1p, b1p, W2p, b2p, jnp.pad(sparse, ((0, 0), (0, Hp - H))), cols),
                [_shared(*x.shape), _member(Hp, Np), _member(Hp), _member(Np, Hp),
                 _member(Np), _member(Hp), _shared(Np)],
                [jax.ShapeDtypeStruct(s, dtype) for s in
                 ((G, Hp, Np), (G, Hp), (G, Np, Hp), (G, Np), (G, Np))], interpret, num_warps)
    gW1, gb1, gW2, gb2, sq = out
    g = {"W1": gW1[:, :H, :N], "b1": gb1[:, :H], "W2": gW2[:, :N, :H], "b2": gb2[:, :N]}
    if tied:  # W1 is used twice, as the encoder and (transposed) as the decoder
        g["W1"] = g["W1"] + jnp.swapaxes(g.pop("W2"), 1, 2)
    g = add_decay(g, params, hyper, tied)
    terms = member_terms(params, x_MxN, hyper, penalty, tied, jnp.sum(sq, axis=1), rho_hat,
                         jnp.sum(l0_p[:, :H], axis=1))
    return terms, g
