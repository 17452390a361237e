/* exit0: the handler of the dispatch benchmark; it only exits 0, so that what is measured is
 * the dispatching around it (and its own fork/exec). */
int main(void)
{
    return 0;
}
