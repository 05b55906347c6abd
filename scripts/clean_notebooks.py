"""Strip volatile state and noise from notebooks, keeping their outputs (:func:`mtlnb.notebook_outputs.clean`).

Removes execution counts, papermill's injected-parameters cell and timing metadata, progress bars frozen in stderr,
``PosixPath`` results, and sets the kernel spec ``make setup`` installs, so that committed notebooks differ only
when their content or outputs do.  ``--check`` changes nothing and exits 1 listing the notebooks that cleaning would
change (CI runs it).

    python scripts/clean_notebooks.py notebooks/            # clean in place
    python scripts/clean_notebooks.py --check notebooks/    # verify
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's package, also from a bare checkout
from mtlnb.notebook_outputs import clean, render  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    files = [f for p in args.paths for f in (sorted(p.glob("*.ipynb")) if p.is_dir() else [p])]
    dirty = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        cleaned = render(clean(json.loads(text)))
        if cleaned != text:
            dirty.append(f)
            if not args.check:
                f.write_text(cleaned, encoding="utf-8")
    if args.check and dirty:
        print("notebooks not clean (run `make clean-notebooks`):", *map(str, dirty), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
