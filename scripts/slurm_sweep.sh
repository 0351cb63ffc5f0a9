#!/usr/bin/env bash
# One run of an evoc sweep per Slurm array task. Submit with one task per run:
#   n=$(evoc sweep SWEEP.yaml --list | wc -l)
#   sbatch --array=0-$((n - 1)) scripts/slurm_sweep.sh SWEEP.yaml [--out DIR]
# Each task runs `evoc sweep SWEEP.yaml --index $SLURM_ARRAY_TASK_ID` (the run's folder is DIR/<run name>, DIR
# defaults to runs/<sweep name>; a resubmitted task resumes its run from the last checkpoint, a finished run is
# skipped) and rewrites DIR/results.csv with every run finished so far.
# For one run spread over several processes, use srun with --ntasks instead: `srun evoc run CONFIG` (MPI).
#SBATCH --job-name=evoc-sweep
#SBATCH --output=slurm-%A_%a.out
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
## On a GPU partition, also: #SBATCH --gres=gpu:1   (then add --device cuda:0 below)
set -euo pipefail
if [ $# -lt 1 ] || [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "usage: sbatch --array=0-N scripts/slurm_sweep.sh SWEEP.yaml [evoc sweep options]" >&2
  exit 2
fi
sweep=$1
shift
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
exec "${EVOC:-evoc}" sweep "$sweep" --index "$SLURM_ARRAY_TASK_ID" --quiet "$@"
