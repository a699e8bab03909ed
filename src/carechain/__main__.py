"""``python -m carechain``: the same as the ``carechain`` command."""

from carechain.cli.main import main

main()
