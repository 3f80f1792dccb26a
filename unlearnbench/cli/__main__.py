"""`python -m unlearnbench.cli`: the `unlearn` command."""

from unlearnbench.cli.app import main

main()
