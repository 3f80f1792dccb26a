"""`python -m unlearnbench.bench.gpu_check`: the GPU check's command line (main.py)."""

from unlearnbench.bench.gpu_check.main import main

if __name__ == "__main__":
    main()
