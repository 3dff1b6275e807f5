from optibid.cli import main

main()
