#!/usr/bin/env python3
"""Helper of scripts/bench_load.sh (see there): generates its tables, times pandas and
polars reading them, and checks nabla's parsed values against pandas's.

    bench_load.py gen DIR NUMERIC_ROWS TEXT_ROWS   # writes DIR/numeric.csv, DIR/text.csv
    bench_load.py read pandas|polars FILE          # prints "rows R cols C seconds S"
    bench_load.py check FILE INSPECT_OUTPUT        # exit 1 if nabla and pandas disagree
    bench_load.py versions                         # python, numpy, pandas, polars versions

`read` times only the read call (time.perf_counter around pandas.read_csv(FILE) or
polars.read_csv(FILE), default settings); the import and process start are outside it.
"""

import sys
import time

SEED = 20240531
COLOURS = ["red", "green", "blue", "yellow", "black", "white", "orange", "purple"]


def gen(directory, numeric_rows, text_rows):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    # 1. numeric: 19 standard-normal features to 5 decimals and a 0/1 integer label.
    features = np.round(rng.standard_normal((numeric_rows, 19)), 5)
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(19)])
    frame["label"] = rng.integers(0, 2, numeric_rows)
    frame.to_csv(f"{directory}/numeric.csv", index=False)
    # 2. text: colour (8 values), city (50), code like A123 (1000), 10 numbers, text label.
    cities = [f"city{i:02d}" for i in range(50)]
    codes = [f"A{i:03d}" for i in range(1000)]
    frame = pd.DataFrame(
        {
            "colour": np.array(COLOURS)[rng.integers(0, len(COLOURS), text_rows)],
            "city": np.array(cities)[rng.integers(0, len(cities), text_rows)],
            "code": np.array(codes)[rng.integers(0, len(codes), text_rows)],
        }
    )
    for i in range(10):
        frame[f"x{i}"] = np.round(rng.standard_normal(text_rows) * 10, 4)
    frame["label"] = np.array(["yes", "no", "maybe"])[rng.integers(0, 3, text_rows)]
    frame.to_csv(f"{directory}/text.csv", index=False)


def read(library, path):
    if library == "pandas":
        import pandas as reader
    elif library == "polars":
        import polars as reader
    else:
        sys.exit(f"bench_load.py: unknown library {library!r}")
    started = time.perf_counter()
    frame = reader.read_csv(path)
    seconds = time.perf_counter() - started
    print(f"rows {frame.shape[0]} cols {frame.shape[1]} seconds {seconds:.4f}")


def parse_inspect(text):
    """nabla inspect's output -> (rows, columns, {name: (kind, values)})."""
    lines = text.splitlines()
    head = lines[0].rsplit(": ", 1)[1].split(", ")
    rows, cols = int(head[0].split()[0]), int(head[1].split()[0])
    columns = {}
    for line in lines[2:]:
        name, kind, missing, values = line.split(None, 3)
        columns[name] = (kind, int(missing), values)
    return rows, cols, columns


def close(nabla, pandas, decimals=None):
    """Equal to 1e-6 relative; a value nabla printed to `decimals` places (the mean, {:.6})
    may also differ by half its last printed digit."""
    slack = 0.5 * 10.0 ** -decimals * 1.001 if decimals is not None else 0.0
    return abs(nabla - pandas) <= 1e-6 * max(abs(nabla), abs(pandas)) + slack


def check(path, inspect_path):
    import pandas as pd

    with open(inspect_path) as f:
        rows, cols, columns = parse_inspect(f.read())
    frame = pd.read_csv(path)
    problems = []
    if (rows, cols) != frame.shape:
        problems.append(f"shape: nabla {rows} x {cols}, pandas {frame.shape[0]} x {frame.shape[1]}")
    if list(columns) != list(frame.columns):
        problems.append(f"names: nabla {list(columns)}, pandas {list(frame.columns)}")
    compared = 0
    for name in frame.columns:
        if name not in columns:
            continue
        kind, missing, values = columns[name]
        series = frame[name]
        if missing != int(series.isna().sum()):
            problems.append(f"{name}: nabla {missing} missing, pandas {int(series.isna().sum())}")
        if series.dtype.kind in "iuf":
            if kind != "numeric":
                problems.append(f"{name}: nabla reads it as {kind}, pandas as {series.dtype}")
                continue
            words = values.split()  # min X mean Y max Z
            got = {words[i]: words[i + 1] for i in range(0, len(words) - 1, 2)}
            want = {"min": float(series.min()), "mean": float(series.mean()), "max": float(series.max())}
            for stat, expected in want.items():
                printed = got.get(stat)
                decimals = len(printed.split(".")[1]) if stat == "mean" and printed and "." in printed else None
                if printed is None or not close(float(printed), expected, decimals):
                    problems.append(f"{name}: {stat} nabla {printed}, pandas {expected!r}")
                compared += 1
        else:
            levels = series.nunique()
            if kind != "text" or not values.startswith(f"{levels} categories:"):
                problems.append(f"{name}: nabla '{kind} {values[:40]}', pandas {levels} distinct strings")
            compared += 1
    if problems:
        print(f"MISMATCH between nabla and pandas on {path}:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        sys.exit(1)
    print(f"{compared} checks over {cols} columns")


def versions():
    import numpy
    import pandas

    try:
        import polars

        polars_version = polars.__version__
    except ImportError:
        polars_version = "not installed"
    print(
        f"python {sys.version.split()[0]}, numpy {numpy.__version__}, "
        f"pandas {pandas.__version__}, polars {polars_version}"
    )


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "gen":
        gen(args[0], int(args[1]), int(args[2]))
    elif command == "read":
        read(args[0], args[1])
    elif command == "check":
        check(args[0], args[1])
    elif command == "versions":
        versions()
    else:
        sys.exit(__doc__)
