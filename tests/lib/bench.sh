# tests/lib/bench.sh - helpers shared by the benchmark scripts (source it).
#
#   median X...   the middle of the numbers given (the lower middle of an
#                 even count), printed as given
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
