#!/usr/bin/env python3
"""Plot the learning curves of one or more evoc run folders (metrics.jsonl) into one PNG.

    scripts/plot_metrics.py runs/cartpole_swingup_easy_pgpe-20240101-120000 [more run folders] -o curves.png

Each run gets its training mean (line) and its test scores (markers). Uses matplotlib when it is installed;
otherwise gnuplot (as `evoc run` does for learning_curve.png). --objective plots -fitness on a log scale (the
functions task, whose fitness is -f). Standard library only besides the plotting program.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl") if os.path.isdir(run_dir) else run_dir
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
    return rows


def series(rows, key, objective):
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v is None:
            continue
        v = -v if objective else v
        if objective and v <= 0:
            continue
        xs.append(r["iter"])
        ys.append(v)
    return xs, ys


def plot_matplotlib(runs, out, objective, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.6, 6.0))
    for name, rows in runs:
        line, = ax.plot(*series(rows, "mean", objective), label=f"{name} mean")
        ax.plot(*series(rows, "best", objective), color=line.get_color(), alpha=0.4, label=f"{name} best")
        tx, ty = series(rows, "test", objective)
        if tx:
            ax.plot(tx, ty, "o", color=line.get_color(), label=f"{name} test")
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective" if objective else "fitness / test score")
    if objective:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def plot_gnuplot(runs, out, objective, title):
    if not shutil.which("gnuplot"):
        sys.exit("neither matplotlib nor gnuplot is available")
    lines = []
    plots = []
    for i, (name, rows) in enumerate(runs):
        for key in ("mean", "test"):
            xs, ys = series(rows, key, objective)
            lines.append(f"$d{i}{key} << EOD")
            lines += [f"{x} {y!r}" for x, y in zip(xs, ys)]
            lines.append("EOD")
        safe = name.replace("'", "")
        plots.append(f"$d{i}mean using 1:2 with lines lw 2 lc {i + 1} title '{safe} mean'")
        plots.append(f"$d{i}test using 1:2 with points pt 7 lc {i + 1} title '{safe} test'")
    lines += [
        "set terminal pngcairo size 960,600 noenhanced",
        f"set output '{out}'",
        f"set title '{title}'",
        "set xlabel 'iteration'",
        "set ylabel '" + ("objective" if objective else "fitness / test score") + "'",
        "set grid",
        "set key outside right",
    ]
    if objective:
        lines.append("set logscale y")
    lines.append("plot " + ", ".join(plots))
    with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        script = f.name
    try:
        subprocess.run(["gnuplot", script], check=True)
    finally:
        os.unlink(script)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (or metrics.jsonl files)")
    ap.add_argument("-o", "--out", default="learning_curves.png", help="output PNG (default learning_curves.png)")
    ap.add_argument("--objective", action="store_true", help="plot -fitness on a log scale (functions task)")
    ap.add_argument("--title", default="evoc learning curves")
    ap.add_argument("--gnuplot", action="store_true", help="use gnuplot even when matplotlib is installed")
    args = ap.parse_args()
    runs = [(os.path.basename(os.path.normpath(r)), read_metrics(r)) for r in args.runs]
    try:
        if args.gnuplot:
            raise ImportError
        plot_matplotlib(runs, args.out, args.objective, args.title)
    except ImportError:
        plot_gnuplot(runs, args.out, args.objective, args.title)
    print(args.out)


if __name__ == "__main__":
    main()
