#!/usr/bin/env bash
# One evoc run spread over the tasks of a Slurm job (MPI: every task evaluates its share of each generation; only
# fitness crosses the network). Submit with, e.g., 4 nodes x 8 tasks:
#   sbatch --nodes=4 --ntasks-per-node=8 scripts/slurm_run.sh configs/walker2d_ars.yaml --out runs/walker
# The run folder must be on a file system every node sees (rank 0 writes it; on --resume every rank reads the
# checkpoint). Resubmitting with `--resume DIR` continues bit-identically, on any number of tasks.
#SBATCH --job-name=evoc-run
#SBATCH --output=slurm-%j.out
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
## GPU nodes: #SBATCH --gres=gpu:4 with --ntasks-per-node=4; device: auto gives each task one of its node's GPUs.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: sbatch [--nodes N --ntasks-per-node K] scripts/slurm_run.sh CONFIG [evoc run options]" >&2
  exit 2
fi
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# srun starts the tasks through PMI/PMIx, which evoc detects (--comm auto); with Open MPI's own launcher use
# `mpirun evoc run ...` instead.
exec srun "${EVOC:-evoc}" run "$@" --quiet
