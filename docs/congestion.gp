# Plots docs/congestion.csv (written by the recovery benchmark's last
# congestion run, `make plot`) into docs/congestion.png.
set datafile separator ','
set terminal pngcairo size 1200,800 font ',11' noenhanced
set output 'docs/congestion.png'
set key autotitle columnhead opaque box
set multiplot layout 2,1 title 'Tally under a 1 Mbit/s bottleneck (2.5 Mbit/s target, noise clip 640x360@30)'
set grid
set xlabel 'seconds'
set ylabel 'kbit/s'
set yrange [0:*]
set key bottom right
# Shade the limited span: path_limit_kbps is non-zero there.
plot 'docs/congestion.csv' using 1:($2 > 0 ? $2 : 1/0) with filledcurves y1=0 fc rgb '#f0d0d0' title 'path limited to 1 Mbit/s', \
     '' using 1:3 with steps lw 2 lc rgb '#1f77b4' title 'encoder video bitrate', \
     '' using 1:4 with lines lw 1.5 lc rgb '#2ca02c' title 'sent'
set ylabel 'ms'
set key center right
set y2label 'frames dropped (total)'
set y2tics
set ytics nomirror
plot 'docs/congestion.csv' using 1:5 with lines lw 1.5 lc rgb '#ff7f0e' title 'queue', \
     '' using 1:7 with lines lw 1.5 lc rgb '#9467bd' title 'player delay over baseline', \
     '' using 1:6 axes x1y2 with steps lw 2 lc rgb '#d62728' title 'dropped frames'
unset multiplot
