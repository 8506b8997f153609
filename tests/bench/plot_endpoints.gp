# Many endpoints (tests/bench/bench_endpoints.c; tests/bench/run.sh passes datafile and
# outfile): time to ready, RSS and idle CPU against the number of endpoints, with the
# targets at 500 endpoints.
set terminal svg size 1200,400 dynamic font "sans,11"
set output outfile
set multiplot layout 1,3 title "ctxd hosts with many endpoints (medians of restarts; one plugin, benchkit)"
set logscale x
set xlabel "endpoints"
set grid
set key top left
set yrange [0:*]
# columns: label endpoints first_ready_ms ready_ms rss_mib idle_cpu_pct threads fds ...
set title "exec -> ready (ms)"
plot datafile using 2:4 with linespoints lw 2 title "restart", \
     '' using 2:3 with linespoints lw 2 title "first start", \
     2000 with lines dt 2 lc rgb "red" title "target at 500"
set title "RSS 1 s after ready (MiB)"
plot datafile using 2:5 with linespoints lw 2 title "RSS", \
     64 with lines dt 2 lc rgb "red" title "target at 500"
set title "idle CPU over 10 s (% of one core)"
plot datafile using 2:6 with linespoints lw 2 title "idle CPU", \
     1 with lines dt 2 lc rgb "red" title "target at 500"
unset multiplot
