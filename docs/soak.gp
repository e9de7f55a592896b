# Plots the soak benchmark's samples (docs/soak.csv, written by
# `make soak`) into docs/soak.png: each process's resident memory, the
# queues, and the frames each player receives, with the faults shaded
# (red: the path to nginx-rtmp, blue: the path to tally serve) and named.
# Another run: gnuplot -e "csv='FILE.csv'; png='FILE.png'" docs/soak.gp
#
# Columns: 1 t_s, 2-4 RSS MiB (tally stream, tally serve, nginx), 5-7 the
# publisher's queue ms (to nginx, to tally serve, to the recording), 8 the
# deepest player queue on tally serve, 9-10 frames/s per player (nginx,
# tally serve), 11-12 destination live, 13-14 fault on the path (nginx,
# tally serve), 15-16 reconnects in Tally's stats line, 17 the fault begun.
if (!exists("csv")) csv = 'docs/soak.csv'
if (!exists("png")) png = 'docs/soak.png'
set datafile separator ','
set terminal pngcairo size 1400,1100 font ',11' noenhanced
set output png
set key autotitle columnhead
set multiplot layout 3,1 title 'Soak: tally stream (720p30) to nginx-rtmp and tally serve, each through a fault proxy'
set grid
set xlabel 'seconds'
set autoscale xfix
set key outside right top width -8
set boxwidth 1 absolute
set style fill solid 0.2 noborder
# The faults' shading spans the panel on the second y axis.
set y2range [0:1]
unset y2tics
set lmargin 10
set rmargin 40

set ylabel 'RSS, MiB'
set yrange [0:*]
plot csv using 1:($13 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#d62728' title 'fault on the path to nginx-rtmp', \
     '' using 1:($14 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#1f77b4' title 'fault on the path to tally serve', \
     '' using 1:(0.98):17 axes x1y2 with labels rotate by 90 right font ',8' notitle, \
     '' using 1:2 with lines lw 2 lc rgb '#2ca02c' title 'tally stream', \
     '' using 1:3 with lines lw 2 lc rgb '#9467bd' title 'tally serve', \
     '' using 1:4 with lines lw 2 lc rgb '#ff7f0e' title 'nginx-rtmp'

set ylabel 'queue, ms'
plot csv using 1:($13 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#d62728' notitle, \
     '' using 1:($14 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#1f77b4' notitle, \
     '' using 1:5 with steps lw 1.5 lc rgb '#d62728' title 'tally stream → nginx-rtmp', \
     '' using 1:6 with steps lw 1.5 lc rgb '#1f77b4' title 'tally stream → tally serve', \
     '' using 1:7 with steps lw 1.5 lc rgb '#7f7f7f' title 'tally stream → recording', \
     '' using 1:8 with steps lw 1.5 lc rgb '#9467bd' title 'tally serve → players (deepest)'

set ylabel 'frames/s per player'
set yrange [0:45]
plot csv using 1:($13 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#d62728' notitle, \
     '' using 1:($14 > 0 ? 1 : 1/0) axes x1y2 with boxes lc rgb '#1f77b4' notitle, \
     '' using 1:9 with lines lw 1.5 lc rgb '#d62728' title 'players on nginx-rtmp', \
     '' using 1:10 with lines lw 1.5 lc rgb '#1f77b4' title 'players on tally serve'
unset multiplot
