/* placeholder: replaced by the view's own file */
