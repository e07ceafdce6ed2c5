# The suite's chart (BUILD/bench/results/performance.png), drawn by bench/bench.py:
#   gnuplot -c plot.gp RATIOS.dat COST.dat OUT.png "TITLE"
# RATIOS.dat: label thr thr_min thr_max p50 p50_min p50_max p99 p99_min p99_max (ratios to untraced)
# COST.dat:   label extra_server_us agent_us (CPU per request beyond untraced)
ratios = ARG1
cost = ARG2
set terminal pngcairo size 1400,900 font "DejaVu Sans,10"
set output ARG3
set multiplot layout 2,2 title ARG4 font ",13"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.75 border -1
set boxwidth 0.8
set grid ytics
set key off
set xtics font ",9"
set bmargin 4
set yrange [0:*]

set title "Throughput / untraced (higher is better; target >= 0.97 on nginx)"
set arrow 1 from graph 0, first 0.97 to graph 1, first 0.97 nohead dt 2 lc rgb "#c00000"
plot ratios using 2:3:4:xtic(1) lc rgb "#4472c4"
unset arrow 1

set title "p50 latency / untraced (lower is better)"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#808080"
plot ratios using 5:6:7:xtic(1) lc rgb "#70ad47"

set title "p99 latency / untraced (lower is better; target <= 1.2 on nginx)"
set arrow 2 from graph 0, first 1.2 to graph 1, first 1.2 nohead dt 2 lc rgb "#c00000"
plot ratios using 8:9:10:xtic(1) lc rgb "#ed7d31"
unset arrow 1
unset arrow 2

set title "CPU per request beyond untraced (us): in the server (probes, SDK) + Passport's own process"
set style histogram rowstacked
set key top left
plot cost using 2:xtic(1) title "server (kernel probes / SDK)" lc rgb "#5b9bd5", \
     '' using 3 title "passport agent" lc rgb "#ffc000"
unset multiplot
