"""``python -m batchline``: the same command line as the ``batchline`` script."""

from batchline.cli import main

if __name__ == "__main__":
    main(prog_name="batchline")
