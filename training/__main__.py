"""`python -m training COMMAND`: `select` (choose packages, write the manifest), `data`
(build the training pairs from the manifest) and `embedder` (train the static code
embedder on those pairs: `training/embedder`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run one of the training commands."""
    args = sys.argv[1:] if argv is None else argv
    commands = {"select": "training.data.select", "data": "training.data.build",
                "embedder": "training.embedder.__main__",
                "reranker": "training.reranker.__main__"}
    if not args or args[0] not in commands:
        print(f"usage: python -m training {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(commands[args[0]])
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
