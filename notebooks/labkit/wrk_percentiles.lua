-- Print the percentiles wrk's --latency table leaves out, in microseconds.
done = function(summary, latency, requests)
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("P%d_US %d\n", p, latency:percentile(p)))
  end
end
