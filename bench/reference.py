#!/usr/bin/env python3
"""Reference timings of one eccentric-regularization step in PyTorch and in NumPy.

Same model as the Rust engine (src/model/energy.rs), for positions Z (n x d, float32):

    E(Z) = gamma * [ lambda/(2n) * sum_i |z_i|^2 + 1/(n(n-1)) * sum_{i != j} K_s(rho_ij) ]
    rho_ij = sqrt(|z_i - z_j|^2 + eps^2),  K_s(r) = r^(-s)/s for s != 0,  K_0(r) = -ln r

with gamma = 1, lambda = 1, eps = 1e-3. One step evaluates E and dE/dZ at Z, then sets
Z <- Z - lr * n * dE/dZ with lr = 0.01 (the per-particle force is F = -n dE/dZ).

Implementations:
  torch  Z.requires_grad, squared distances from torch.cdist(Z, Z)**2 with the diagonal masked
         out, loss.backward(), update under torch.no_grad().
  numpy  explicit gradient with two BLAS products: G = Z @ Z.T gives the squared distances
         D2 = |z_i|^2 + |z_j|^2 - 2 G_ij + eps^2, then W = D2^(-(s+2)/2) (zero diagonal) and
         dE/dz_i = gamma * (lambda/n z_i - 2/(n(n-1)) * (rowsum(W)_i z_i - (W @ Z)_i)).

Figures per (implementation, n, d):
  steps_per_second
  pair_interactions_per_second = steps_per_second * n(n-1)/2
  gflops = steps_per_second * 4 n^2 d / 1e9, a nominal operation count. It counts only the two
           n x n x d matrix products that dominate the step (Z @ Z.T and W @ Z, 2 n^2 d each).
           The element-wise kernel work is left out, and the count is the same for every
           implementation.

Threads: the whole run is one process. --threads (default: os.cpu_count()) sets OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS before NumPy and PyTorch are imported, and
torch.set_num_threads.

Run `python3 bench/reference.py --help` for the options, `--check` to test both
implementations against each other and against central finite differences.
"""

import argparse
import csv
import math
import os
import platform
import sys
import time

GAMMA = 1.0
LAMBDA = 1.0
EPS = 1e-3
LR = 0.01
IMPLS = ("torch", "numpy")
CSV_HEADER = ["impl", "n", "d", "threads", "steps_per_second", "pair_interactions_per_second", "gflops"]

# Tolerances of --check. The cross-check runs both implementations in float32, and on the check
# case they agree to about 1e-7 relative (measured), well inside the required 1e-4.
CROSS_TOL = 1e-4
# Float64 gradients match central differences (h = 1e-6) to about 1e-8 relative (measured).
FD_TOL = 1e-6
FD_STEP = 1e-6
CHECK_N, CHECK_D = 50, 5
# Kernel exponents the check always covers (every closed form and the general power), besides
# the one given with --kernel-s.
CHECK_S = (-1.0, 0.0, 0.5, 1.0, 2.0)

# NumPy and PyTorch, imported by main() after the thread variables are set. The torch module
# stays None when it fails to import.
np = None
torch = None


# ----------------------------------------------------------------------------------------------
# NumPy: explicit gradient


def numpy_energy_grad(z, s):
    """Returns the energy and dE/dZ of the model at z, in z's dtype (float32 or float64).

    NOTE: in float32 the Gram-matrix form of D2 has an absolute error of roughly 1e-7 * |z|^2
    (an estimate from float32 rounding), so pairs closer than about 10 * eps get inaccurate weights.
    torch.cdist uses the same form for n > 25, so both can differ there from the Rust engine.
    """
    n = z.shape[0]
    dtype = z.dtype
    eps2 = dtype.type(EPS * EPS)
    sq = np.einsum("ij,ij->i", z, z)
    # D2 = |z_i|^2 + |z_j|^2 - 2 z_i.z_j + eps^2, built in place in the buffer of Z @ Z.T.
    d2 = z @ z.T
    d2 *= dtype.type(-2.0)
    d2 += sq[:, None]
    d2 += sq[None, :]
    d2 += eps2
    # Rounding can take a near-coincident pair below eps^2, or below 0, which the exact value never is.
    np.maximum(d2, eps2, out=d2)
    # The diagonal is set to 1, which is finite in every kernel, and its terms are removed below.
    np.fill_diagonal(d2, 1.0)
    kernel_sum, w = _numpy_kernel(d2, s)
    kernel_sum -= n * _kernel_at_one(s)
    np.fill_diagonal(w, 0.0)
    rowsum = w.sum(axis=1)
    wz = w @ z
    pair = dtype.type(2.0 / (n * (n - 1)))
    grad = dtype.type(GAMMA * LAMBDA / n) * z - dtype.type(GAMMA) * pair * (rowsum[:, None] * z - wz)
    energy = GAMMA * (LAMBDA / (2 * n) * float(sq.sum()) + float(kernel_sum) / (n * (n - 1)))
    return energy, grad


def _numpy_kernel(rho2, s):
    """Returns the sum of K_s(rho) over all entries of rho2 = rho^2, and the weights rho^(-s-2).

    The weights are a new array. The exponents used most have closed forms, as in src/model/kernel.rs.
    """
    if s == 0.0:
        w = np.reciprocal(rho2)
        k = np.log(rho2)
        return -0.5 * k.sum(dtype=np.float64), w
    if s == 2.0:
        w = np.reciprocal(rho2)  # 1/rho^2 = K_2 * 2
        ksum = 0.5 * w.sum(dtype=np.float64)
        np.multiply(w, w, out=w)
        return ksum, w
    if s == -1.0:
        rho = np.sqrt(rho2)  # K_{-1} = -rho, weight 1/rho
        ksum = -rho.sum(dtype=np.float64)
        np.reciprocal(rho, out=rho)
        return ksum, rho
    if s == 1.0:
        w = np.sqrt(rho2)  # K_1 = 1/rho, weight 1/rho^3
        np.reciprocal(w, out=w)
        ksum = w.sum(dtype=np.float64)
        w /= rho2
        return ksum, w
    w = np.power(rho2, rho2.dtype.type(-0.5 * s))  # rho^(-s)
    ksum = w.sum(dtype=np.float64) / s
    w /= rho2
    return ksum, w


def _kernel_at_one(s):
    """Returns K_s(1), which each diagonal entry set to rho = 1 adds to the kernel sum."""
    return 0.0 if s == 0.0 else 1.0 / s


def numpy_step(z, s):
    """Takes one step in place on the array z and returns the energy before it."""
    energy, grad = numpy_energy_grad(z, s)
    grad *= z.dtype.type(LR * z.shape[0])
    z -= grad
    return energy


# ----------------------------------------------------------------------------------------------
# PyTorch: cdist and autograd


def torch_energy(z, s):
    """Returns the energy of the model at z (a float32 or float64 tensor), differentiable."""
    n = z.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
    d2 = torch.cdist(z, z) ** 2
    # The diagonal is set to rho^2 = 1, which is finite in every kernel, and its kernel values to
    # 0. So it adds nothing to the energy and a zero, not NaN, to the gradient.
    unit = torch.ones((), dtype=z.dtype, device=z.device)
    rho2 = torch.where(off_diagonal, d2 + EPS * EPS, unit)
    if s == 0.0:
        k = -0.5 * torch.log(rho2)
    else:
        k = rho2.pow(-0.5 * s) / s
    kernel_sum = torch.where(off_diagonal, k, torch.zeros_like(unit)).sum()
    return GAMMA * (LAMBDA / (2 * n) * (z * z).sum() + kernel_sum / (n * (n - 1)))


def torch_energy_grad(z_np, s):
    """Returns the energy (float) and dE/dZ (ndarray) at a NumPy array, through autograd."""
    z = torch.from_numpy(z_np.copy()).requires_grad_(True)
    loss = torch_energy(z, s)
    loss.backward()
    return float(loss.detach()), z.grad.numpy()


def torch_step(z, s):
    """Takes one step in place on the leaf tensor z and returns the energy before it."""
    loss = torch_energy(z, s)
    loss.backward()
    with torch.no_grad():
        z -= (LR * z.shape[0]) * z.grad
    z.grad = None
    return loss.detach()


# ----------------------------------------------------------------------------------------------
# Check


def direct_energy(z, s):
    """Computes the energy from its definition with a plain double loop in float64 (small n only)."""
    n, d = z.shape
    rows = z.tolist()
    norm2 = sum(sum(x * x for x in row) for row in rows)
    ksum = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                rho = math.sqrt(sum((rows[i][k] - rows[j][k]) ** 2 for k in range(d)) + EPS * EPS)
                ksum += -math.log(rho) if s == 0.0 else rho ** (-s) / s
    return GAMMA * (LAMBDA / (2 * n) * norm2 + ksum / (n * (n - 1)))


def finite_difference_grad(energy, z):
    """Computes central differences of energy(z) over every coordinate of a float64 array."""
    grad = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        original = z[idx]
        z[idx] = original + FD_STEP
        up = energy(z)
        z[idx] = original - FD_STEP
        down = energy(z)
        z[idx] = original
        grad[idx] = (up - down) / (2 * FD_STEP)
    return grad


def rel_err(a, ref):
    """Returns the largest absolute difference over the largest magnitude of the reference."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def run_check(impls, kernel_s, seed):
    """Checks the implementations on n=50, d=5, prints one line per comparison, returns True if all pass."""
    z64 = np.random.default_rng(seed).standard_normal((CHECK_N, CHECK_D))
    z32 = z64.astype(np.float32)
    ok = True

    def report(label, err, tol):
        nonlocal ok
        passed = err <= tol
        ok = ok and passed
        print(f"  {'ok  ' if passed else 'FAIL'} {label:<52} rel err {err:.2e}  (tol {tol:.0e})")

    exponents = sorted(set(CHECK_S) | {float(kernel_s)})
    print(f"check: n={CHECK_N} d={CHECK_D} seed={seed} eps={EPS} gamma={GAMMA} lambda={LAMBDA}")
    for s in exponents:
        print(f"s = {s:g}")
        e_direct = direct_energy(z64, s)
        e_np64, g_np64 = numpy_energy_grad(z64.copy(), s)
        g_fd = finite_difference_grad(lambda z: numpy_energy_grad(z, s)[0], z64.copy())
        report("numpy float64 energy vs double-loop definition", abs(e_np64 - e_direct) / abs(e_direct), FD_TOL)
        report("numpy float64 gradient vs central differences", rel_err(g_np64, g_fd), FD_TOL)
        if "torch" in impls:
            e_t64, g_t64 = torch_energy_grad(z64, s)
            report("torch float64 energy vs double-loop definition", abs(e_t64 - e_direct) / abs(e_direct), FD_TOL)
            report("torch float64 gradient vs central differences", rel_err(g_t64, g_fd), FD_TOL)
            _, g_np32 = numpy_energy_grad(z32.copy(), s)
            _, g_t32 = torch_energy_grad(z32, s)
            report("float32 gradient: numpy vs torch", rel_err(g_np32, g_t32), CROSS_TOL)
            # One full step each, from the same start, must land on the same positions.
            z_numpy = z32.copy()
            numpy_step(z_numpy, s)
            z_torch = torch.from_numpy(z32.copy()).requires_grad_(True)
            torch_step(z_torch, s)
            report("float32 positions after one step: numpy vs torch", rel_err(z_numpy, z_torch.detach().numpy()), CROSS_TOL)
        else:
            _, g_np32 = numpy_energy_grad(z32.copy(), s)
            report("numpy float32 gradient vs float64", rel_err(g_np32, g_np64), CROSS_TOL)
    print("check passed" if ok else "check FAILED")
    return ok


# ----------------------------------------------------------------------------------------------
# Timing


def time_impl(impl, n, d, s, seconds, seed):
    """Runs 2 warm-up steps, then steps until `seconds` have passed (at least 3).

    Returns (steps, elapsed seconds, final energy).
    """
    z0 = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    if impl == "numpy":
        z = z0

        def step():
            return numpy_step(z, s)
    else:
        z = torch.from_numpy(z0).requires_grad_(True)

        def step():
            return torch_step(z, s)

    for _ in range(2):
        step()
    steps = 0
    start = time.perf_counter()
    while True:
        energy = step()
        steps += 1
        elapsed = time.perf_counter() - start
        if steps >= 3 and elapsed >= seconds:
            return steps, elapsed, float(energy)


# ----------------------------------------------------------------------------------------------
# Command line


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}: expected comma-separated integers such as 1024,4096")
    if not values:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}: expected at least one value")
    return values


def _impl_list(text):
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in IMPLS]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"invalid implementation list {text!r}: expected a comma-separated subset of {','.join(IMPLS)}")
    return list(dict.fromkeys(values))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="reference.py",
        description="Times one eccentric-regularization step (energy, gradient dE/dZ, update "
        "Z <- Z - lr*n*dE/dZ with lr=0.01, gamma=lambda=1, eps=1e-3) in PyTorch (cdist + "
        "autograd) and NumPy (explicit gradient with BLAS), for every (n, d) combination.",
        epilog="gflops is a nominal figure: steps/s * 4*n*n*d / 1e9, the operation count of the two "
        "n x n x d matrix products that dominate a step (Z @ Z.T and W @ Z). It is the same for every "
        "implementation and leaves out the element-wise kernel work. pair_interactions_per_second "
        "is steps/s * n(n-1)/2.",
    )

    parser.add_argument("--impl", type=_impl_list, default=None,
                        help="comma-separated implementations: torch, numpy (default: torch,numpy)")
    parser.add_argument("--n", type=_int_list, default=[1024, 4096],
                        help="numbers of points, comma-separated (default: 1024,4096)")
    parser.add_argument("--dim", type=_int_list, default=[3, 64],
                        help="dimensions, comma-separated (default: 3,64)")
    parser.add_argument("--kernel-s", type=float, default=0.0,
                        help="Riesz exponent s of the kernel (default: 0, the log kernel)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timed seconds per row after 2 warm-up steps, at least 3 steps (default: 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for BLAS, OpenMP and torch (default: all cores, os.cpu_count())")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of numpy.random.default_rng for the standard normal start (default: 0)")
    parser.add_argument("--out", metavar="FILE.csv",
                        help="also write the rows as CSV with the header " + ",".join(CSV_HEADER))
    parser.add_argument("--check", action="store_true",
                        help="check the implementations on n=50, d=5 (against each other in float32, against "
                        "central differences and the definition in float64), then exit, nonzero on failure")
    args = parser.parse_args(argv)

    if any(v < 2 for v in args.n):
        parser.error(f"invalid --n {args.n}: every n must be at least 2")
    if any(v < 1 for v in args.dim):
        parser.error(f"invalid --dim {args.dim}: every d must be at least 1")
    if not (args.seconds >= 0 and math.isfinite(args.seconds)):
        parser.error(f"invalid --seconds {args.seconds}: expected a finite number, at least 0")
    if args.threads < 1:
        parser.error(f"invalid --threads {args.threads}: expected at least 1")
    if not math.isfinite(args.kernel_s):
        parser.error(f"invalid --kernel-s {args.kernel_s}: expected a finite number")
    return args


def main(argv=None):
    global np, torch
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Only an explicit --impl can name torch alone, so a missing torch is an error only then.
    impls = args.impl if args.impl is not None else list(IMPLS)

    # The thread pools of OpenBLAS, MKL and OpenMP read these when the libraries load.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy

    np = numpy

    if "torch" in impls:
        try:
            import torch as torch_module
        except Exception as exc:  # An ImportError, or an OSError from a broken install's libraries.
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if impls == ["torch"]:
                print(f"reference.py: error: failed to import torch ({reason}), install it with "
                      "'python3 -m pip install torch'", file=sys.stderr)
                return 2
            print(f"reference.py: failed to import torch ({reason}), so the torch rows are skipped", file=sys.stderr)
            impls = [i for i in impls if i != "torch"]
        else:
            torch = torch_module
            torch.set_num_threads(args.threads)

    versions = f"python {platform.python_version()}, numpy {np.__version__}"
    if torch is not None:
        versions += f", torch {torch.__version__}"
    torch_threads = f", torch.get_num_threads()={torch.get_num_threads()}" if torch is not None else ""
    print(f"versions: {versions}")
    print(f"threads: {args.threads} (OMP/OPENBLAS/MKL_NUM_THREADS{torch_threads}; cpu_count={os.cpu_count()})")

    if args.check:
        return 0 if run_check(impls, args.kernel_s, args.seed) else 1

    print(f"model: gamma={GAMMA} lambda={LAMBDA} s={args.kernel_s:g} eps={EPS} lr={LR}, float32, seed={args.seed}, "
          f"{args.seconds:g} s per row after 2 warm-up steps")
    print("gflops: nominal, 4*n*n*d per step (the two n x n x d matrix products)")
    header = ("impl", "n", "d", "threads", "steps", "time_s", "steps/s", "pairs/s", "GFLOP/s", "energy")
    widths = (6, 6, 4, 7, 6, 7, 10, 10, 8, 12)
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    rows = []
    for impl in impls:
        for n in args.n:
            for d in args.dim:
                steps, elapsed, energy = time_impl(impl, n, d, args.kernel_s, args.seconds, args.seed)
                sps = steps / elapsed
                pairs = sps * n * (n - 1) / 2
                gflops = sps * 4 * n * n * d / 1e9
                rows.append([impl, n, d, args.threads, f"{sps:.6g}", f"{pairs:.6g}", f"{gflops:.6g}"])
                cells = (impl, n, d, args.threads, steps, f"{elapsed:.2f}", f"{sps:.4g}", f"{pairs:.3e}",
                         f"{gflops:.2f}", f"{energy:.6g}")
                print("  ".join(str(c).rjust(w) for c, w in zip(cells, widths)), flush=True)

    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_HEADER)
            writer.writerows(rows)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
