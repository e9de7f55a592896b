# Plots docs/renditions.csv (written by tests/it/renditions.rs's congestion
# test when TALLY_RENDITIONS_CSV is set; `make plot-renditions`) into
# docs/renditions.png: two destinations at 2500 kbit/s, the first behind a
# 1 Mbit/s link for 20 s.
set datafile separator ','
set terminal pngcairo size 1200,800 font ',11' noenhanced
set output 'docs/renditions.png'
set key autotitle columnhead opaque box
set multiplot layout 2,1 title 'Two destinations at 2500 kbit/s, the first behind a 1 Mbit/s link (two nginx-rtmp, noise clip 640x360@30)'
set grid
set xlabel 'seconds'
set ylabel 'kbit/s'
set yrange [0:3500]
set key bottom right
plot 'docs/renditions.csv' using 1:($2 > 0 ? $2 : 1/0) with filledcurves y1=0 fc rgb '#f0d0d0' title 'first path limited to 1 Mbit/s', \
     '' using 1:3 with lines lw 2 lc rgb '#2ca02c' title 'second (clear): video its player received', \
     '' using 1:4 with lines lw 2 lc rgb '#d62728' title 'first (limited): video its player received'
set ylabel 'kbit/s'
set y2label 'encodes'
set y2range [0:3]
set y2tics 1
set ytics nomirror
set key center right
plot 'docs/renditions.csv' using 1:($2 > 0 ? $2 : 1/0) with filledcurves y1=0 fc rgb '#f0d0d0' title 'first path limited', \
     '' using 1:5 with steps lw 2 lc rgb '#2ca02c' title "second's encode (bitrate)", \
     '' using 1:6 with steps lw 2 dt 2 lc rgb '#d62728' title "first's encode (bitrate)", \
     '' using 1:7 axes x1y2 with steps lw 1.5 lc rgb '#555555' title 'renditions running'
unset multiplot
