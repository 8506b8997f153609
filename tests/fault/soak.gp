# The soak run's samples against time (tests/fault/soak.sh passes datafile, the CSV that
# tests/fault/test_soak.c writes, and outfile): the host's RSS and open files above, the
# rates and the backlog below; each fault named where it began.
set terminal svg size 1100,720 dynamic font "sans,11"
set output outfile
set datafile separator ","
set key autotitle columnhead
set multiplot layout 2,1 title "ctxd soak: one host under a steady stream with faults on a schedule (2 shared cores with broker and database)"
set grid
set autoscale xfix
set key outside right top vertical
set xlabel "minutes"
set lmargin 10
set rmargin 24

# a value the sampler could not read (-1: no host, a server down) is no point
ok(v) = v >= 0 ? v : NaN
# a series' rate from consecutive samples (state per series: the columns are read in turn)
pt = NaN; pv = NaN; et = NaN; ev = NaN; vt = NaN; vv = NaN
dp(t, v) = (r = (v >= 0 && pv >= 0 && t > pt) ? (v - pv) / (t - pt) : NaN, pt = t, pv = (v >= 0 ? v : pv), r)
de(t, v) = (r = (v >= 0 && ev >= 0 && t > et) ? (v - ev) / (t - et) : NaN, et = t, ev = (v >= 0 ? v : ev), r)
dv(t, v) = (r = (v >= 0 && vv >= 0 && t > vt) ? (v - vv) / (t - vt) : NaN, vt = t, vv = (v >= 0 ? v : vv), r)
# the fault's name at its first sample ("-": none)
lastf = ""
fname(s) = (r = (s ne "-" && s ne "fault" && s ne lastf) ? s : "", lastf = s, r)

set title "host: resident set and open files (each host lifetime: the host is killed once a cycle)"
set ylabel "RSS (MiB)"
set y2label "open files"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot datafile using ($1/60):(ok($3)/1024) with lines lw 2 lc rgb "#3465a4" title "RSS (MiB)", \
     '' using ($1/60):(ok($4)) axes x1y2 with steps lw 1.5 lc rgb "#cc0000" title "open files", \
     '' using ($1/60):(0):(fname(strcol(11))) with labels rotate by 90 left offset 0,0.5 font ",8" textcolor rgb "#555753" notitle

set title "messages: published and handled per second, backlog"
set ylabel "messages per second"
set y2label "messages waiting"
plot datafile using ($1/60):(dp($1, $5)) with lines lc rgb "#babdb6" lw 1.5 title "published/s", \
     '' using ($1/60):(de($1, $6)) with lines lc rgb "#3465a4" title "effects/s", \
     '' using ($1/60):(dv($1, $7)) with lines lc rgb "#73d216" title "events applied/s", \
     '' using ($1/60):(ok($8)) axes x1y2 with lines lc rgb "#f57900" title "queue depth"
unset multiplot
