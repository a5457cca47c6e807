#!/usr/bin/env bash
# The full-space score tables (issues #9 and #12), phase by phase, each resumable from its committed table.
#
#   scripts/full_space_tables.sh                 # every phase, in the order below
#   scripts/full_space_tables.sh nb101-mission   # one or more phases by name
#
# A phase scores into runs/full/BENCH_DATASET.db (2 local workers, 1 torch thread each, --dedupe), starting
# from the committed table (only what it lacks is computed), then exports the store back over that table.
# Stop it with Ctrl-C, or `pkill -TERM -f "zenbench bench"` where it runs in the background (a background job of a
# non-interactive shell ignores SIGINT): the phase's store keeps what was scored, and
#   zenbench export --store runs/full/BENCH_DATASET.db --out TABLE
# saves it into the table to commit; the next run continues from there. Then re-render the report:
#   zenbench report --table TABLE --out reports/BENCH
# Environment: ZENBENCH_DATA (the data folder), WORKERS (default 2), DEVICE (default cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}
DEVICE=${DEVICE:-cpu}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p runs/full

MISSION_ZEN=(--proxy-option zen.network=as-built --proxy-option zen.network=no-reslink)
NB201_FULL=params,flops,synflow,zen,naswot,jacob_cov,l2_norm
# Every other proxy, in passes that leave whole columns when the session's end cuts a phase off: the nine that
# take about a third of the time, then swap, then grasp (NB101: 14 s and 22 s per cell on one thread of the
# 54 s of all eleven).
REST_PASSES=(snip,fisher,plain,jacob_cov,epe_nas,l2_norm,zico,meco,az_nas swap grasp)
# NB201's other proxies whose cost lets all 15,625 cells finish here, cheapest first (per dataset on 2 workers,
# with --dedupe copying the gradient proxies within the 6,466 classes): meco about 10 min, epe_nas 24 min,
# the shared gradient pass 1 h, az_nas 1 h. grasp (about 2 h), TE-NAS and swap (about 5 h each) are GPU work.
NB201_EXTRA_PASSES=(meco epe_nas snip,grad_norm,fisher,plain,zico az_nas)

phase() {  # phase BENCH DATASET TABLE SAMPLE PROXIES [extra bench options...]
  local bench=$1 dataset=$2 table=$3 sample=$4 proxies=$5
  shift 5
  local store=runs/full/${bench}_${dataset}.db resume=()
  [[ -f $table ]] && resume=(--resume-from "$table")
  mkdir -p "$(dirname "$table")"
  zenbench bench --benchmark "$bench" --dataset "$dataset" --proxies "$proxies" --sample "$sample" --seed 0 \
    --device "$DEVICE" --threads 1 --workers "$WORKERS" --dedupe --store "$store" "${resume[@]}" "$@"
  zenbench export --store "$store" --benchmark "$bench" --dataset "$dataset" --out "$table"
}

passes() {  # passes BENCH DATASET TABLE SAMPLE PROXIES... : one phase per comma-separated group, in order
  local bench=$1 dataset=$2 table=$3 sample=$4 proxies
  shift 4
  for proxies in "$@"; do phase "$bench" "$dataset" "$table" "$sample" "$proxies"; done
}

run_phase() {
  case $1 in
    macro-mission) phase macro cifar10 reports/macro/tables/cifar10.csv.xz 6561 \
                     zen,synflow,naswot,grad_norm,params,flops "${MISSION_ZEN[@]}" ;;
    macro-tenas)   phase macro cifar10 reports/macro/tables/cifar10.csv.xz 6561 tenas ;;
    nb101-mission) phase nb101 cifar10 reports/nb101/tables/cifar10.csv.gz 500 params,flops,synflow,zen,naswot,grad_norm ;;
    # TE-NAS on its thin NB101 networks (search/spaces/nb101.py variant_overrides): about 9 s per cell on one
    # thread at load 2.5; on the full ones (tenas.network=full) 222 s per cell, about 31 CPU-hours: a GPU job.
    nb101-tenas)   phase nb101 cifar10 reports/nb101/tables/cifar10.csv.gz 500 tenas ;;
    nb201-c10)     phase nb201 cifar10 reports/nb201/tables/cifar10.csv.xz 15625 $NB201_FULL ;;
    nb201-c100)    phase nb201 cifar100 reports/nb201/tables/cifar100.csv.xz 15625 $NB201_FULL ;;
    nb201-in16)    phase nb201 imagenet16 reports/nb201/tables/imagenet16.csv.xz 15625 $NB201_FULL ;;
    nb101-rest)    passes nb101 cifar10 reports/nb101/tables/cifar10.csv.gz 500 "${REST_PASSES[@]}" ;;
    macro-rest)    passes macro cifar10 reports/macro/tables/cifar10.csv.xz 6561 "${REST_PASSES[@]}" ;;
    nb201-extra-c10)  passes nb201 cifar10 reports/nb201/tables/cifar10.csv.xz 15625 "${NB201_EXTRA_PASSES[@]}" ;;
    nb201-extra-c100) passes nb201 cifar100 reports/nb201/tables/cifar100.csv.xz 15625 "${NB201_EXTRA_PASSES[@]}" ;;
    nb201-extra-in16) passes nb201 imagenet16 reports/nb201/tables/imagenet16.csv.xz 15625 \
                        "${NB201_EXTRA_PASSES[@]}" ;;
    *) echo "full_space_tables.sh: unknown phase '$1'; expected one of: ${PHASES[*]}" >&2; exit 2 ;;
  esac
}

PHASES=(macro-mission macro-tenas nb101-mission nb101-tenas nb201-c10 nb201-c100 nb201-in16 nb101-rest macro-rest
        nb201-extra-c10 nb201-extra-c100 nb201-extra-in16)
for name in "${@:-${PHASES[@]}}"; do
  echo "== $name $(date -u +%FT%TZ)"
  run_phase "$name"
done
