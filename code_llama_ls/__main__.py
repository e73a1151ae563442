from code_llama_ls.cli.main import main

main()
