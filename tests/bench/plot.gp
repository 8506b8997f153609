# Throughput per setup: the ceiling, ctxd with a per-message and with a batch handler, and
# the exactly-once reference worker (tests/bench/run.sh passes datafile and outfile; "-" in
# throughput.dat is a figure that was not measured).
set terminal svg size 960,440 dynamic font "sans,11"
set output outfile
set title "ctxd throughput vs ceiling and reference worker (medians; one 2-core machine shared with broker and database)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "messages per second"
set yrange [0:*]
set grid ytics
set key top right
set xtics noenhanced
plot datafile using 2:xtic(1) title "ceiling (raw consume / confirmed publish)" lc rgb "#babdb6", \
     '' using 3 title "ctxd, per-message handler" lc rgb "#3465a4", \
     '' using 4 title "ctxd, batch handler" lc rgb "#73d216", \
     '' using 5 title "reference worker, per message" lc rgb "#f57900", \
     '' using 6 title "reference worker, set-based" lc rgb "#cc0000"
