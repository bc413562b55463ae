from estafeta.cli import main

main()
