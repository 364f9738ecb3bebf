from longdiv.cli import main

main()
