"""denoise-bench entry point: ``python run.py [-m] key=value ...`` (see README)."""
import sys

from denoise_bench.run.entry import main

if __name__ == "__main__":
    sys.exit(main())
