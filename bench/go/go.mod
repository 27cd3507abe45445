module rtbench

go 1.17
