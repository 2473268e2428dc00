"""Run a ferrocim sweep on a Slurm cluster with dask-jobqueue (``pip install dask-jobqueue``).

    python configs/slurm_sweep.py configs/sweep_eps.toml sweeps/eps

Run it on the login node (the dask scheduler lives in this process); it submits Slurm
jobs of worker processes, runs every unfinished point and writes sweeps/eps/results.parquet.
Adjust the queue, account, cores, memory and walltime to your site. The sweep directory
and any paths in the sweep file must be on a file system the compute nodes share.
"""

import sys

from dask_jobqueue import SLURMCluster

from ferrocim.pipelines.sweep import run_sweep
from ferrocim.pipelines.sweep_spec import read_sweep

THREADS = 1  # torch threads per point; each worker process runs one point at a time

sweep_file, out = sys.argv[1], sys.argv[2]
sweep = read_sweep(sweep_file)  # every point validated before any job is submitted
with SLURMCluster(
    queue="normal",
    account="my-account",
    cores=8,  # per job: 8 worker processes × THREADS torch threads
    processes=8 // THREADS,
    memory="32GB",
    walltime="04:00:00",
    job_script_prologue=[
        "source .venv/bin/activate",
        f"export OMP_NUM_THREADS={THREADS} TQDM_DISABLE=1",
    ],
) as cluster:
    cluster.scale(jobs=4)  # or cluster.adapt(minimum_jobs=1, maximum_jobs=16)
    print("dashboard:", cluster.dashboard_link)
    result = run_sweep(sweep, out, scheduler=cluster.scheduler_address, threads_per_worker=THREADS)
print(f"{result.done}/{len(sweep.points)} points done, {len(result.failed)} failed")
sys.exit(1 if result.failed else 0)
