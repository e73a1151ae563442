from code_llama_ls.cli import main

main()
