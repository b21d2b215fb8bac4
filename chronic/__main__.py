from chronic.cli import main

main()
