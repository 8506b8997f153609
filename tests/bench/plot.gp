# Throughput of each ctxd benchmark next to its ceiling (tests/bench/run.sh passes
# datafile and outfile).
set terminal svg size 900,420 dynamic font "sans,11"
set output outfile
set title "ctxd throughput vs ceiling (medians; one 2-core machine shared with broker and database)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "messages per second"
set yrange [0:*]
set grid ytics
set key top right
set xtics rotate by -20 noenhanced
plot datafile using 2:xtic(1) title "figure" lc rgb "#3465a4", \
     '' using 3 title "its ceiling (0 = is a ceiling)" lc rgb "#babdb6"
