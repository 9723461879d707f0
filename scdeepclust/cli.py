"""The ``scdeepclust`` command: cluster samples, benchmark methods, run the demo.

Inputs are ``.h5ad`` files, 10x Visium Space Ranger output folders and spca ``.h5`` files,
told apart by their content (:mod:`scdeepclust._formats`).

``scdeepclust cluster``, ``scdeepclust bench`` and ``scdeepclust demo``; see
``scdeepclust --help``. Results go to stdout, progress and warnings to stderr. Every output
is written atomically and an existing file is only replaced with ``--overwrite`` (except
that ``demo`` replaces the outputs of an earlier demo run in the same folder, so that
``make demo`` can be re-run).

Exit status: 0 on success, 2 for bad input (missing or malformed file, bad option, an
output that already exists), 1 for an unexpected failure, 130 when interrupted (Ctrl-C) and
143 when terminated (SIGTERM). Errors are one line, ``scdeepclust: error: ...``;
``--debug`` adds the traceback.

The module imports only the standard library at start-up: the scientific libraries are
imported inside :func:`main`, so that Ctrl-C at any moment exits with status 130 and no
traceback. A command's outputs for one sample are written all or none, an input file is
never overwritten (not even with ``--overwrite``), and the temporary files of an interrupted
or terminated run are removed (stale ones of an earlier, killed run are swept at start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["main", "METHODS"]

PROG = "scdeepclust"
#: Methods of ``--method``/``--methods``, in ladder order; the deep model first.
METHODS = ("deep", "pca_leiden", "pca_louvain", "pca_kmeans", "kmeans")
#: ``obs`` key each method writes (the method's name; ``deep`` writes ``deep_cluster``).
OBS_KEYS = {m: ("deep_cluster" if m == "deep" else m) for m in METHODS}
DEMO_OUTPUTS = ("demo.h5ad", "demo.png", "demo_history.png", "demo_scores.csv")
DEMO_STAMP = ".scdeepclust-demo"
EXIT_OK, EXIT_FAILURE, EXIT_INPUT = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 128 + int(signal.SIGTERM)
#: Largest seed numpy, scikit-learn and torch all accept.
MAX_SEED = 2**32 - 1
BENCH_COLUMNS = ["sample", "method", "seed", "ari", "nmi", "seconds"]

# third-party chatter that says nothing about the user's data (shown with --debug)
_QUIET_WARNINGS = (
    r"Sparse CSR tensor support is in beta",
    r"Sparse invariant checks are implicitly disabled",
    r"pkg_resources is deprecated",
)


class CliError(Exception):
    """An error reported as one line ``scdeepclust: error: <message>``."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that ``finally`` blocks clean up."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# The compiled libraries every command needs. Importing them runs C++ (pybind11) code that
# calls back into Python; a KeyboardInterrupt raised inside such a callback cannot unwind
# through the C++ and aborts the process (SIGABRT), so signals are held while they import.
_SCIENTIFIC_MODULES = ("torch", "scanpy", "scdeepclust.tl", "scdeepclust.pl", "scdeepclust.metrics")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM inside the block; act on the first one when it ends.

    A second Ctrl-C or SIGTERM inside the block exits at once (nothing has been written yet:
    the block only imports).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum, frame):
        if received:
            print(
                f"{PROG}: {'interrupted' if signum == signal.SIGINT else 'terminated'}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED)
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt if received[0] == signal.SIGINT else _Terminated()


def _import_scientific_stack() -> None:
    """Import the compiled libraries with signals held (see ``_SCIENTIFIC_MODULES``)."""
    import importlib

    with _signals_held():
        for name in _SCIENTIFIC_MODULES:
            importlib.import_module(name)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (with a pointer to --help) instead of usage + exit."""

    def error(self, message: str):
        raise CliError(f"{message} (see '{self.prog} --help')")


class _Log:
    """Progress messages on stderr, silenced by --quiet; ``bars``: show progress bars."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        # training progress bars only on a terminal: in a log file they are noise
        self.bars = not quiet and sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _warnings_as_lines(quiet: bool, debug: bool) -> Iterator[None]:
    """Show warnings as ``scdeepclust: warning: ...`` lines (none with --quiet)."""
    with warnings.catch_warnings():
        if not debug:
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)

            def show(message, category, filename, lineno, file=None, line=None):
                if not quiet:
                    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)

            warnings.showwarning = show
        yield


# ----------------------------------------------------------------------------- helpers


def _positive_int(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _sample_name(path: Path) -> str:
    """The sample name of an input: a file's stem without a leading ``sample_`` (as
    read_spca), a Space Ranger folder's name (its parent's for ``outs``)."""
    if path.is_dir():
        return path.parent.name if path.name == "outs" else path.name
    stem = path.stem
    return stem[len("sample_") :] if stem.startswith("sample_") and len(stem) > 7 else stem


def _expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Inputs from file and folder arguments: a Space Ranger output folder stands for
    itself, any other folder for its ``*.h5`` and ``*.h5ad`` files (sorted)."""
    from ._formats import MATRIX_H5, spaceranger_root
    from ._utils import not_regular_file

    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir() and spaceranger_root(path) is not None:
            files.append(path)
        elif path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix in (".h5", ".h5ad") and p.is_file()
            )
            if not found:
                raise CliError(
                    f"no .h5 or .h5ad files in folder {path}, and it is no Space Ranger output "
                    f"(no {MATRIX_H5})"
                )
            files.extend(found)
        elif path.exists():
            kind = not_regular_file(path)
            if kind is not None:  # reading a FIFO or a device would block or never end
                raise CliError(f"{path} is {kind}, not a regular .h5 or .h5ad file")
            files.append(path)
        else:
            raise CliError(f"no such file: {path}")
    files = list(dict.fromkeys(f.resolve() for f in files))  # a file given twice runs once
    names: dict[str, Path] = {}
    for f in files:
        other = names.setdefault(_sample_name(f), f)
        if other != f:
            raise CliError(
                f"{other} and {f} have the same sample name {_sample_name(f)!r}; their "
                "outputs would collide (rename one, or run them into different --out folders)"
            )
    return files


def _out_dir(path: str) -> Path:
    """The output folder, created when missing and checked to be writable (before any work)."""
    from ._io_write import check_writable_folder

    out = Path(path).expanduser()
    if out.is_symlink() and not out.exists():
        raise CliError(
            f"--out {out} is a symbolic link to {os.readlink(out)!r}, which does not exist; "
            "create that folder or remove the link"
        )
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create the --out folder {out}: {err.strerror}") from None
    try:
        check_writable_folder(out)
    except PermissionError as err:
        raise CliError(f"--out {out} is not writable ({err.strerror})") from None
    return out


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links too
    except OSError:
        return False


def _check_outputs(paths: Sequence[Path], overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse outputs that are inputs (always) or exist (unless ``overwrite``); sweep the
    temporary files an earlier, killed run left for these outputs."""
    from ._io_write import check_can_write, sweep_temp_files

    for path in paths:
        clash = next((f for f in inputs if _same_file(path, f)), None)
        if clash is not None:
            raise CliError(
                f"the output {path} would replace the input file {clash}; choose another "
                "--out folder (--overwrite never replaces an input)"
            )
    try:
        check_can_write(paths, overwrite=overwrite)
    except FileExistsError as err:
        target = Path(err.filename)
        if target.is_symlink() and not target.exists():
            raise CliError(
                f"{target} is a dangling symbolic link (to {os.readlink(target)!r}); use "
                "--overwrite to replace the link, or remove it"
            ) from None
        raise CliError(f"{err.filename} already exists; use --overwrite to replace it") from None
    sweep_temp_files(paths)


def _truth_key(adata, args) -> str | None:
    """The ``obs`` column of truth labels: ``--truth-key``, else ``truth`` when present."""
    key = getattr(args, "truth_key", None)
    if key is not None:
        return key
    return "truth" if "truth" in adata.obs else None


def _n_truth_classes(adata, truth_key: str | None = "truth") -> int | None:
    if truth_key is None or truth_key not in adata.obs:
        return None
    return int(adata.obs[truth_key].dropna().nunique())


def _read(path: Path, args, sample: str):
    """Read one input (spca .h5, .h5ad or Space Ranger folder, told by content)."""
    from ._formats import read_input

    adata, _ = read_input(
        path,
        sample=sample,
        layer=getattr(args, "layer", None),
        truth_key=getattr(args, "truth_key", None),
    )
    return adata


def _drop_results(adata, key: str) -> None:
    """Forget an earlier run's results under ``key`` (so a re-run does not warn)."""
    if key in adata.obs:
        del adata.obs[key]
    adata.uns.pop(key, None)
    for k in (f"X_{key}", f"{key}_proba"):
        if k in adata.obsm:
            del adata.obsm[k]


def _run_method(
    adata,
    method: str,
    n_clusters: int | None,
    *,
    seed: int,
    device: str,
    verbose: bool,
    layer: str | None = None,
) -> float:
    """Run one method, writing ``obs[OBS_KEYS[method]]``; returns the wall time in seconds."""
    from . import tl

    _drop_results(adata, OBS_KEYS[method])
    start = time.perf_counter()
    if method == "deep":
        tl.deep_cluster(
            adata, n_clusters, random_state=seed, device=device, verbose=verbose, layer=layer
        )
    else:
        getattr(tl, method)(adata, n_clusters, random_state=seed, layer=layer)
    return time.perf_counter() - start


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (numbers with 3 decimals)."""
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([head, rule, *rows])


def _report(err: BaseException, debug: bool, path: Path | None = None, what: str = "") -> int:
    """Print the one-line error (and the traceback with --debug); return the exit code.

    The message is prefixed with ``path`` (unless it names the file already) and ``what``.
    """
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    if isinstance(err, CliError):
        message, code = str(err), err.code
    elif isinstance(err, FileExistsError):
        name = err.filename or err
        message, code = f"{name} already exists; use --overwrite to replace it", EXIT_INPUT
    elif isinstance(err, OSError | ValueError | KeyError):
        # missing/unreadable files, SpcaFormatError, ScdeepclustInputError, bad options
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        message, code = text, EXIT_INPUT
    else:
        message = f"unexpected {type(err).__name__}: {err}"
        if not debug:
            message += " (run with --debug for the traceback)"
        code = EXIT_FAILURE
    message = " ".join(str(message).split())  # one line
    if what:
        message = f"{what}: {message}"
    if path is not None and path.name not in message:
        message = f"{path}: {message}"
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return code


# ----------------------------------------------------------------------------- cluster


def _render(fig) -> bytes:
    """A figure as PNG bytes, rendered in memory; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    from ._io_write import figure_bytes

    try:
        return figure_bytes(fig, "png")
    finally:
        plt.close(fig)


def _cluster_one(path: Path, args, out: Path, log: _Log) -> None:
    import pandas as pd

    from . import metrics, pl
    from ._io_write import bytes_writer, h5ad_writer, write_all_atomic

    sample = _sample_name(path)
    key = OBS_KEYS[args.method]
    log(f"{sample}: reading {path}")
    adata = _read(path, args, sample)
    truth_key = _truth_key(adata, args)
    n_truth = _n_truth_classes(adata, truth_key)
    if args.n_clusters is not None:
        k, source = args.n_clusters, "--n-clusters"
    elif n_truth is not None and n_truth >= 2:
        k, source = n_truth, "truth classes"
    elif args.method == "deep":
        k, source = None, "estimated"
    else:
        why = (
            "has no truth labels (obs 'truth' or --truth-key)"
            if n_truth is None
            else f"has {n_truth} truth class"
        )
        raise CliError(
            f"--method {args.method} needs --n-clusters: {path} {why} to take the number of "
            "clusters from (only --method deep estimates it)"
        )
    log(
        f"{sample}: {adata.n_obs} spots x {adata.n_vars} genes; running {args.method} "
        f"with {k if k is not None else 'an estimated number of'} clusters ({source})"
    )
    seconds = _run_method(
        adata,
        args.method,
        k,
        seed=args.seed,
        device=args.device,
        verbose=log.bars,
        layer=args.layer,
    )
    found = int(adata.obs[key].nunique())
    has_truth = bool(n_truth)
    adata.uns["scdeepclust_cli"] = {
        "command": "cluster",
        "method": args.method,
        "obs_key": key,
        "truth_key": truth_key,
        "layer": args.layer,
        "n_clusters": None if k is None else int(k),
        "n_clusters_source": source,
        "seed": args.seed,
        "seconds": seconds,
        "version": __version__,
    }

    # everything is rendered first and the files are written all or none
    h5ad = out / f"{sample}.h5ad"
    keys = [truth_key, key] if has_truth else [key]
    writers = {
        h5ad: h5ad_writer(adata),
        out / f"{sample}.png": bytes_writer(_render(pl.spatial_compare(adata, keys))),
    }
    if k is None and adata.uns[key].get("n_clusters_evidence"):  # why this k
        figure = pl.k_stability(adata, key)
        writers[out / f"{sample}_k_stability.png"] = bytes_writer(_render(figure))
    if args.export_csv:  # Loupe Browser's custom-category import: barcode,domain
        table = pd.DataFrame({"barcode": adata.obs_names, "domain": adata.obs[key].astype(str)})
        writers[out / f"{sample}_domains.csv"] = bytes_writer(table.to_csv(index=False))
    summary = f"{sample}: {key}, {found} clusters, {seconds:.1f} s"
    if has_truth:
        res = metrics.score(adata, key, truth_key=truth_key)
        record = {
            "sample": sample,
            "method": args.method,
            "obs_key": key,
            "seed": args.seed,
            "seconds": seconds,
            **res,
        }
        writers[out / f"{sample}_scores.json"] = bytes_writer(json.dumps(record, indent=2) + "\n")
        writers[out / f"{sample}_scores.csv"] = bytes_writer(
            pd.DataFrame([record]).to_csv(index=False)
        )
        summary += f", ARI {res['ari']:.3f}, NMI {res['nmi']:.3f}"
    write_all_atomic(writers, overwrite=args.overwrite)
    print(f"{summary} -> {h5ad}", flush=True)


def _cmd_cluster(args, log: _Log) -> int:
    files = _expand_inputs(args.files)
    out = _out_dir(args.out)
    suffixes = (".h5ad", ".png", "_scores.json", "_scores.csv")
    suffixes += ("_domains.csv",) if args.export_csv else ()
    if args.method == "deep" and args.n_clusters is None:  # k may be estimated
        suffixes += ("_k_stability.png",)
    outputs = [out / f"{_sample_name(f)}{suffix}" for f in files for suffix in suffixes]
    _check_outputs(outputs, args.overwrite, files)
    code = EXIT_OK
    for path in files:
        try:
            _cluster_one(path, args, out, log)
        except Exception as err:  # one failed file does not stop the others
            code = max(code, _report(err, args.debug, path))
    return code


# ----------------------------------------------------------------------------- bench


def _cmd_bench(args, log: _Log) -> int:
    import pandas as pd

    from . import metrics, pl
    from ._io_write import bytes_writer, write_all_atomic

    files = _expand_inputs(args.inputs)
    out = _out_dir(args.out)
    methods = list(dict.fromkeys(args.methods))
    seeds = list(dict.fromkeys(args.seeds))
    paths = {ext: out / f"bench.{ext}" for ext in ("csv", "md", "png")}
    _check_outputs(list(paths.values()), args.overwrite, files)

    rows, code = [], EXIT_OK
    for path in files:
        sample = _sample_name(path)
        try:
            adata = _read(path, args, sample)
        except Exception as err:
            code = max(code, _report(err, args.debug, path))
            continue
        truth_key = _truth_key(adata, args)
        k = _n_truth_classes(adata, truth_key)
        if not k or k < 2:
            log(f"{sample}: skipped (no truth labels with at least 2 classes)")
            continue
        for method in methods:
            for seed in seeds:
                log(f"{sample}: {method}, seed {seed}, {k} clusters")
                try:
                    seconds = _run_method(
                        adata,
                        method,
                        k,
                        seed=seed,
                        device=args.device,
                        verbose=False,
                        layer=args.layer,
                    )
                    res = metrics.score(adata, OBS_KEYS[method], truth_key=truth_key)
                except Exception as err:
                    code = max(code, _report(err, args.debug, path, method))
                    continue
                rows.append(
                    {
                        "sample": sample,
                        "method": method,
                        "seed": seed,
                        "ari": res["ari"],
                        "nmi": res["nmi"],
                        "seconds": seconds,
                    }
                )
    if not rows:
        raise CliError(
            "nothing to benchmark: no input has truth labels (obs 'truth', or the column "
            "named by --truth-key)"
        )

    table = pd.DataFrame(rows, columns=BENCH_COLUMNS)
    summary = (
        table.groupby("method", sort=False)
        .agg(
            ari=("ari", "mean"),
            nmi=("nmi", "mean"),
            seconds=("seconds", "mean"),
            runs=("ari", "size"),
        )
        .reset_index()
        .sort_values("ari", ascending=False)
    )
    n_samples = table["sample"].nunique()
    text = (
        f"# scdeepclust bench\n\n{n_samples} sample(s), methods {', '.join(methods)}, "
        f"seeds {', '.join(map(str, seeds))}; the number of clusters is the number of truth "
        "classes of each sample.\n\n## Mean over samples and seeds\n\n"
        f"{_markdown(summary)}\n\n## All runs\n\n{_markdown(table)}\n"
    )
    fig = pl.scores(table, title=f"scdeepclust bench ({n_samples} sample(s))")
    writers = {
        paths["csv"]: bytes_writer(table.to_csv(index=False)),
        paths["md"]: bytes_writer(text),
        paths["png"]: bytes_writer(_render(fig)),
    }
    write_all_atomic(writers, overwrite=args.overwrite)
    print(_markdown(summary), flush=True)
    log(f"wrote {paths['csv']}, {paths['md']} and {paths['png']}")
    return code


# ----------------------------------------------------------------------------- demo


def _cmd_demo(args, log: _Log) -> int:
    import pandas as pd

    from . import datasets, metrics, pl
    from ._io_write import bytes_writer, h5ad_writer, write_all_atomic, write_text_atomic

    out = _out_dir(args.out)
    stamp = out / DEMO_STAMP
    # a folder holding an earlier demo run is the demo's own: re-running replaces its files
    overwrite = args.overwrite or stamp.exists()
    paths = {name: out / name for name in DEMO_OUTPUTS}
    _check_outputs(list(paths.values()), overwrite)
    start = time.perf_counter()
    log(f"simulating {args.n_obs} spots x 500 genes in 5 layered domains (seed {args.seed})")
    adata = datasets.synthetic(args.n_obs, random_state=args.seed)
    k = _n_truth_classes(adata)
    write_text_atomic(
        "Outputs of `scdeepclust demo`; a new demo run replaces them.\n", stamp, overwrite=True
    )
    rows = []
    for method in ("deep", "pca_kmeans"):
        key = OBS_KEYS[method]
        log(f"running {key} with {k} clusters")
        seconds = _run_method(
            adata, method, k, seed=args.seed, device=args.device, verbose=log.bars
        )
        rows.append({"method": key, **metrics.score(adata, key), "seconds": seconds})
    table = pd.DataFrame(rows)

    writers = {
        paths["demo.h5ad"]: h5ad_writer(adata),
        paths["demo.png"]: bytes_writer(
            _render(pl.spatial_compare(adata, ["truth", "deep_cluster", "pca_kmeans"]))
        ),
        paths["demo_history.png"]: bytes_writer(_render(pl.history(adata, "deep_cluster"))),
        paths["demo_scores.csv"]: bytes_writer(table.to_csv(index=False)),
    }
    write_all_atomic(writers, overwrite=overwrite)
    shown = table[["method", "ari", "nmi", "acc", "n_clusters", "seconds"]]
    print(_markdown(shown), flush=True)
    log(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - start:.1f} s")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser

_EPILOG = """\
exit status: 0 success, 2 bad input (missing or malformed file, bad option, an output that
already exists without --overwrite), 1 unexpected failure. Errors are printed as one line
'scdeepclust: error: ...'; add --debug for the traceback.
"""


def _common(
    parser: argparse.ArgumentParser, *, out_default: str | None, threads_default: int | None = None
) -> None:
    if out_default is None:
        parser.add_argument(
            "--out", "-o", required=True, metavar="DIR", help="output folder (created when missing)"
        )
    else:
        parser.add_argument(
            "--out",
            "-o",
            default=out_default,
            metavar="DIR",
            help="output folder (created when missing; default: %(default)s)",
        )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (default: refuse and stop)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device of the deep model: auto (GPU when available), "
        "cpu, cuda or cuda:N (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int(1),
        default=threads_default,
        metavar="N",
        help="limit the BLAS, OpenMP and torch threads to N; 1 is much faster on a machine "
        "busy with other jobs (default: "
        + ("the libraries' own choice" if threads_default is None else "%(default)s")
        + ")",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress messages, progress bars or warnings on stderr",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and all warnings")


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layer",
        metavar="NAME",
        help=".h5ad inputs: the layer holding the raw counts (default: X)",
    )
    parser.add_argument(
        "--truth-key",
        metavar="COLUMN",
        help=".h5ad inputs: the obs column of truth labels, for the number of clusters and the "
        "scores (default: 'truth' when present)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``scdeepclust`` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="Spatially aware deep clustering of spatial transcriptomics into tissue "
        "domains. Run 'scdeepclust COMMAND --help' for the options of a command.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "cluster",
        help="cluster samples with one method",
        formatter_class=fmt,
        description="Cluster each sample into tissue domains. Inputs, told apart by content: "
        ".h5ad files (counts in X or --layer, coordinates in obsm['spatial'], truth in "
        "obs['truth'] or --truth-key), 10x Visium Space Ranger output folders "
        "(filtered_feature_bc_matrix.h5 + spatial/tissue_positions*.csv; in-tissue spots) and "
        "spca .h5 files (scdeepclust.read_spca). Writes, per sample:\n"
        "  <sample>.h5ad              the data with labels in obs['<method>'] (deep: "
        "obs['deep_cluster'])\n"
        "  <sample>.png               spatial map: truth vs prediction (prediction alone "
        "without truth)\n"
        "  <sample>_scores.json/.csv  ARI, NMI, accuracy, ... against the truth (files with "
        "truth only)\n"
        "  <sample>_domains.csv       with --export-csv: barcode,domain (a Loupe Browser "
        "custom category)\n"
        "  <sample>_k_stability.png   when deep estimated the number of clusters: the "
        "stability of every k tried (sdc.pl.k_stability)\n"
        "The sample name is the file name without its extension and a leading 'sample_' (a "
        "Space Ranger folder's name; its parent's for 'outs').\n"
        "The number of clusters: --n-clusters, else the number of truth classes of the file; "
        "without truth, --method deep estimates it and the others need --n-clusters.\n"
        "A file that fails is reported and the others are still processed.",
        epilog="examples:\n  scdeepclust cluster data/sample_151673.h5 --out results "
        "--method deep --seed 0\n"
        "  scdeepclust cluster spaceranger/151673/outs --out results --export-csv\n"
        "  scdeepclust cluster tissue.h5ad --layer counts --truth-key domain --out results\n\n"
        + _EPILOG,
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="INPUT",
        help=".h5ad or spca .h5 files, Space Ranger output folders (any other folder stands "
        "for its *.h5 and *.h5ad files)",
    )
    p.add_argument(
        "--method",
        "-m",
        choices=METHODS,
        default="deep",
        help="clustering method (default: %(default)s)",
    )
    p.add_argument(
        "--n-clusters",
        "-k",
        type=_positive_int(2),
        metavar="K",
        help="number of clusters (default: number of truth classes)",
    )
    _input_options(p)
    p.add_argument(
        "--export-csv",
        action="store_true",
        help="also write <sample>_domains.csv, 'barcode,domain', importable into Loupe "
        "Browser as a custom category",
    )
    p.add_argument(
        "--seed",
        type=_positive_int(0, MAX_SEED),
        default=0,
        help=f"random seed, 0 to {MAX_SEED} (default: %(default)s)",
    )
    _common(p, out_default=None)

    p = sub.add_parser(
        "bench",
        help="benchmark methods on samples with truth",
        formatter_class=fmt,
        description="Run every method with every seed on every sample that has truth labels "
        "(others are skipped), with as many clusters as truth classes. Inputs as for 'cluster' "
        "(.h5ad, Space Ranger folders, spca .h5). Writes:\n"
        "  bench.csv  one row per run: sample, method, seed, ari, nmi, seconds\n"
        "  bench.md   the mean per method and all runs, as markdown tables\n"
        "  bench.png  ARI and NMI per sample and method (scdeepclust.pl.scores)\n"
        "For the full benchmark see benchmarks/domains.py.",
        epilog="example:\n  scdeepclust bench data/ --out bench --methods deep pca_kmeans "
        "--seeds 0 1 2\n\n" + _EPILOG,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=".h5ad or spca .h5 files, Space Ranger output folders, or folders of files",
    )
    _input_options(p)
    p.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        metavar="METHOD",
        help=f"methods to run, among {', '.join(METHODS)} (default: all)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=_positive_int(0, MAX_SEED),
        default=[0],
        metavar="SEED",
        help="random seeds, one run each (default: 0)",
    )
    _common(p, out_default=None)

    p = sub.add_parser(
        "demo",
        help="end-to-end demo on synthetic data (about 15-30 s on a CPU)",
        formatter_class=fmt,
        description="Simulate a tissue with 5 layered domains (scdeepclust.datasets.synthetic),"
        " cluster it with deep_cluster and the pca_kmeans baseline, print the scores and write "
        "demo.h5ad, demo.png (truth vs deep_cluster vs pca_kmeans), demo_history.png "
        "(training curves) and demo_scores.csv.\n\n"
        "Re-running the demo into the same folder replaces the outputs of the earlier demo "
        f"run (recognised by the file {DEMO_STAMP} the demo leaves there); files of the same "
        "names that the demo did not write are only replaced with --overwrite.\n\n"
        "The demo uses one thread by default: the problem is small, the run takes about "
        "15 s and does not slow down on a busy machine, and the scores are the same on "
        "every machine.",
        epilog="example:\n  scdeepclust demo --out demo_output\n\n" + _EPILOG,
    )
    p.add_argument(
        "--n-obs",
        type=_positive_int(50),
        default=3000,
        metavar="N",
        help="number of spots (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=_positive_int(0, MAX_SEED),
        default=0,
        help=f"random seed, 0 to {MAX_SEED} (default: %(default)s)",
    )
    _common(p, out_default="demo_output", threads_default=1)
    return parser


_COMMANDS = {"cluster": _cmd_cluster, "bench": _cmd_bench, "demo": _cmd_demo}


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
    except CliError as err:
        return _report(err, debug)
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    log = _Log(args.quiet)
    with _warnings_as_lines(args.quiet, args.debug):
        try:
            _import_scientific_stack()  # import errors are reported, not raised
            from .engine import limit_threads

            with limit_threads(args.threads):
                return _COMMANDS[args.command](args, log)
        except Exception as err:
            return _report(err, args.debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scdeepclust`` command line; returns the exit status.

    Ctrl-C at any point (the scientific libraries are imported in here) gives status 130,
    SIGTERM status 143; either way the temporary files of the outputs being written are
    removed.
    """
    try:
        with _sigterm_raises():
            return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"{PROG}: terminated", file=sys.stderr, flush=True)
        return EXIT_TERMINATED


if __name__ == "__main__":
    sys.exit(main())
