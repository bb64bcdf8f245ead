export const PACKAGE_NAME = '@polyglot/judge';
